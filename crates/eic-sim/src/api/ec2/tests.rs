use super::endpoints::{DEFAULT_ENDPOINT_PAGE, describe_endpoints};
use super::instances::{describe_instances, get_console_output};
use super::network::{
    DEFAULT_RULE_PAGE, describe_security_group_rules, describe_subnets, describe_vpcs,
};
use crate::api::response::Answer;
use crate::{DEMO_ENDPOINT_SG, DEMO_INSTANCE_SG, NetworkInterface, World};

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn world_with_endpoints(n: usize) -> World {
    let mut w = World::demo();
    for i in 0..n {
        let mut e = w.endpoints[0].clone();
        e.id = format!("eice-{:017x}", i + 1);
        e.vpc_id = if i % 2 == 0 { "vpc-2" } else { "vpc-1" }.to_string();
        e.fips = false;
        w.endpoints.push(e);
    }
    w
}

/// The text of every `<tag>…</tag>` in `xml`, in order.
fn values_of(xml: &str, tag: &str) -> Vec<String> {
    xml.split(&format!("<{tag}>"))
        .skip(1)
        .filter_map(|s| s.split('<').next())
        .map(str::to_string)
        .collect()
}

fn token_in(xml: &str) -> Option<String> {
    values_of(xml, "nextToken").into_iter().next()
}

/// Asks for `base` page after page, following `nextToken`, and returns the
/// `<tag>` values of each page.
fn walk_pages(
    base: &[(&str, &str)],
    tag: &str,
    ask: impl Fn(&[(String, String)]) -> Answer,
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut p = params(base);
        if let Some(t) = &token {
            p.push(("NextToken".into(), t.clone()));
        }
        let a = ask(&p);
        assert_eq!(a.status, 200, "{}", a.body);
        pages.push(values_of(&a.body, tag));
        token = token_in(&a.body);
        if token.is_none() {
            return pages;
        }
    }
}

#[test]
fn endpoint_paging_walks_all_pages() {
    let w = world_with_endpoints(4);
    let pages = walk_pages(
        &[("Action", "DescribeInstanceConnectEndpoints")],
        "instanceConnectEndpointId",
        |p| describe_endpoints(&w, p, "rid"),
    );
    assert_eq!(pages.len(), 3);
    assert!(pages.iter().all(|p| p.len() <= DEFAULT_ENDPOINT_PAGE));
    let all: Vec<String> = w.endpoints.iter().map(|e| e.id.clone()).collect();
    assert_eq!(pages.concat(), all);
}

#[test]
fn endpoint_filters() {
    let w = world_with_endpoints(4);
    let p = params(&[
        ("Filter.1.Name", "vpc-id"),
        ("Filter.1.Value.1", "vpc-1"),
        ("Filter.2.Name", "state"),
        ("Filter.2.Value.1", "create-complete"),
        ("Filter.2.Value.2", "update-complete"),
        ("MaxResults", "10"),
    ]);
    let a = describe_endpoints(&w, &p, "rid");
    let ids = values_of(&a.body, "instanceConnectEndpointId");
    assert_eq!(ids.len(), 3);
    assert!(token_in(&a.body).is_none());
    assert!(a.body.contains("<fipsDnsName>eice-0123456789abcdef0.51mu1a7e.fips.ec2-instance-connect-endpoint.us-east-1.amazonaws.com</fipsDnsName>"), "{}", a.body);
    assert!(a.body.contains("<preserveClientIp>true</preserveClientIp>"));
    assert!(
        a.body
            .contains("<securityGroupIdSet><item>sg-0123456789abcdef0</item>")
    );
}

/// An EC2 action as the tests call it.
type Action = fn(&World, &[(String, String)], &str) -> Answer;

fn endpoints(w: &World, p: &[(String, String)], r: &str) -> Answer {
    describe_endpoints(w, p, r)
}

/// A request an EC2 action must refuse with a 400.
struct Rejection {
    case: &'static str,
    action: Action,
    params: &'static [(&'static str, &'static str)],
    code: &'static str,
    /// Text the message must contain.
    message: &'static str,
}

#[test]
fn ec2_rejections() {
    let cases = [
        Rejection {
            case: "unknown instance",
            action: describe_instances,
            params: &[("InstanceId.1", "i-0123456789abcdef1")],
            code: "InvalidInstanceID.NotFound",
            message: "The instance ID 'i-0123456789abcdef1' does not exist",
        },
        Rejection {
            case: "malformed instance id",
            action: describe_instances,
            params: &[("InstanceId.1", "web-1")],
            code: "InvalidInstanceID.Malformed",
            message: "",
        },
        Rejection {
            case: "unknown endpoint",
            action: endpoints,
            params: &[("InstanceConnectEndpointId.1", "eice-00000000000000099")],
            code: "InvalidInstanceConnectEndpointId.NotFound",
            message: "",
        },
        Rejection {
            case: "bad endpoint page token",
            action: endpoints,
            params: &[("NextToken", "garbage")],
            code: "InvalidPaginationToken",
            message: "",
        },
        Rejection {
            case: "unknown endpoint filter",
            action: endpoints,
            params: &[("Filter.1.Name", "color"), ("Filter.1.Value.1", "red")],
            code: "InvalidParameterValue",
            message: "",
        },
        Rejection {
            case: "unknown rule filter",
            action: describe_security_group_rules,
            params: &[("Filter.1.Name", "x")],
            code: "InvalidParameterValue",
            message: "",
        },
        Rejection {
            case: "unknown vpc",
            action: describe_vpcs,
            params: &[("VpcId.1", "vpc-9")],
            code: "InvalidVpcID.NotFound",
            message: "",
        },
    ];
    let w = world_with_endpoints(4);
    for r in &cases {
        let a = (r.action)(&w, &params(r.params), "r");
        assert_eq!((a.status, a.detail.as_str()), (400, r.code), "{}", r.case);
        assert!(
            a.body.contains(&format!("<Code>{}</Code>", r.code)),
            "{}",
            r.case
        );
        assert!(a.body.contains(r.message), "{}: {}", r.case, a.body);
    }
}

#[test]
fn describe_instances_answers() {
    let w = World::demo();
    let a = describe_instances(&w, &params(&[("InstanceId.1", "i-0123456789abcdef0")]), "r");
    assert_eq!(a.status, 200);
    assert!(
        a.body
            .contains("<instanceState><code>16</code><name>running</name></instanceState>")
    );
    assert!(
        a.body
            .contains("<privateIpAddress>10.0.1.10</privateIpAddress>")
    );
    assert!(
        a.body
            .contains("<placement><availabilityZone>us-east-1a</availabilityZone>")
    );
    assert!(a.body.starts_with("<?xml"));
    assert!(a.body.contains("<DescribeInstancesResponse xmlns="));

    let mut w2 = w.clone();
    w2.instances[0].private_ip = None;
    let a = describe_instances(
        &w2,
        &params(&[("InstanceId.1", "i-0123456789abcdef0")]),
        "r",
    );
    assert!(!a.body.contains("privateIpAddress"));
}

#[test]
fn console_output_answers() {
    use base64::Engine as _;
    let mut w = World::demo();
    let p = params(&[("InstanceId", "i-0123456789abcdef0"), ("Latest", "true")]);
    let a = get_console_output(&w, &p, "r");
    assert_eq!(a.status, 200);
    assert!(!a.body.contains("<output>"));
    w.instances[0].console_output = Some("boot <ok>\r\n".into());
    let a = get_console_output(&w, &p, "r");
    let b64 = a
        .body
        .split("<output>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    let text = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(text, b"boot <ok>\r\n");
    assert!(a.body.contains("<timestamp>"));
    w.instances[0].console_denied = true;
    let a = get_console_output(&w, &p, "r");
    assert_eq!(
        (a.status, a.detail.as_str()),
        (403, "UnauthorizedOperation")
    );
}

#[test]
fn security_group_rules_page_and_filter() {
    let w = World::demo();
    let pages = walk_pages(
        &[
            ("Filter.1.Name", "group-id"),
            ("Filter.1.Value.1", DEMO_ENDPOINT_SG),
            ("Filter.1.Value.2", DEMO_INSTANCE_SG),
        ],
        "securityGroupRuleId",
        |p| describe_security_group_rules(&w, p, "rid"),
    );
    assert!(pages.iter().all(|p| p.len() <= DEFAULT_RULE_PAGE));
    let seen = pages.concat();
    assert_eq!(seen.len(), 4, "{seen:?}");
    let a = describe_security_group_rules(&w, &params(&[("MaxResults", "1000")]), "rid");
    assert!(a.body.contains("<isEgress>true</isEgress>"));
    assert!(a.body.contains(&format!(
        "<referencedGroupInfo><groupId>{DEMO_INSTANCE_SG}</groupId>"
    )));
}

#[test]
fn instances_list_every_interface_and_its_groups() {
    let mut w = World::demo();
    w.instances[0].network_interfaces.push(NetworkInterface {
        id: "eni-2".into(),
        security_group_ids: vec!["sg-0000000000000002a".into()],
    });
    let a = describe_instances(&w, &params(&[("InstanceId.1", "i-0123456789abcdef0")]), "r");
    assert_eq!(a.body.matches("<networkInterfaceId>").count(), 2);
    assert!(
        a.body
            .contains("<groupId>sg-0000000000000002a</groupId><groupName>default</groupName>")
    );
    let subnets = describe_subnets(&w, &params(&[("SubnetId.1", "subnet-1")]), "r");
    assert!(subnets.body.contains("<cidrBlock>10.0.1.0/24</cidrBlock>"));
    let vpcs = describe_vpcs(&w, &params(&[("VpcId.1", "vpc-1")]), "r");
    assert!(vpcs.body.contains("<cidrBlock>10.0.0.0/16</cidrBlock>"));
}
