//! The writes restrict makes, on the world directly: what lands, and what
//! EC2 refuses.

use super::endpoint_writes::modify_endpoint;
use super::interfaces::describe_network_interfaces;
use super::security_writes::{authorize, revoke};
use crate::{DEMO_ENDPOINT_SG, DEMO_INSTANCE_SG, Peer, World};

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn allow_cidr(cidr: &str) -> Vec<(String, String)> {
    params(&[
        ("GroupId", DEMO_INSTANCE_SG),
        ("IpPermissions.1.IpProtocol", "tcp"),
        ("IpPermissions.1.FromPort", "22"),
        ("IpPermissions.1.ToPort", "22"),
        ("IpPermissions.1.IpRanges.1.CidrIp", cidr),
        ("IpPermissions.1.IpRanges.1.Description", "added by a test"),
    ])
}

fn rules_of(w: &World, group: &str) -> Vec<crate::SgRule> {
    w.security_groups
        .iter()
        .find(|g| g.id == group)
        .unwrap()
        .rules
        .clone()
}

#[test]
fn authorize_adds_a_rule_with_a_fresh_id_and_refuses_a_duplicate() {
    let mut w = World::demo();
    let a = authorize(&mut w, &allow_cidr("203.0.113.7/24"), "req-1", false);
    assert_eq!(a.status, 200, "{}", a.body);
    let added = rules_of(&w, DEMO_INSTANCE_SG).pop().unwrap();
    assert_eq!(added.peer, Peer::Cidr("203.0.113.0/24".into()));
    assert_eq!(added.description.as_deref(), Some("added by a test"));
    assert!(!added.egress);
    assert!(a.body.contains(&format!(
        "<securityGroupRuleId>{}</securityGroupRuleId>",
        added.id
    )));
    assert!(a.body.contains("<return>true</return>"));
    assert!(
        added.id.starts_with("sgr-") && added.id.len() == 21,
        "{}",
        added.id
    );

    let again = authorize(&mut w, &allow_cidr("203.0.113.0/24"), "req-2", false);
    assert_eq!(again.status, 400);
    assert_eq!(again.detail, "InvalidPermission.Duplicate");

    let mut bad = allow_cidr("203.0.113.0/24");
    bad[0].1 = "sg-0000000000000dead".into();
    assert_eq!(
        authorize(&mut w, &bad, "req-3", false).detail,
        "InvalidGroup.NotFound"
    );
    let bad = allow_cidr("203.0.113.0/33");
    assert_eq!(
        authorize(&mut w, &bad, "req-4", false).detail,
        "InvalidParameterValue"
    );
}

#[test]
fn egress_to_a_group() {
    let mut w = World::demo();
    let p = params(&[
        ("GroupId", DEMO_ENDPOINT_SG),
        ("IpPermissions.1.IpProtocol", "tcp"),
        ("IpPermissions.1.FromPort", "2222"),
        ("IpPermissions.1.ToPort", "2222"),
        ("IpPermissions.1.Groups.1.GroupId", DEMO_INSTANCE_SG),
    ]);
    let a = authorize(&mut w, &p, "req-1", true);
    assert_eq!(a.status, 200, "{}", a.body);
    let added = rules_of(&w, DEMO_ENDPOINT_SG).pop().unwrap();
    assert!(added.egress);
    assert_eq!(added.peer, Peer::Group(DEMO_INSTANCE_SG.into()));
    assert!(a.body.contains("AuthorizeSecurityGroupEgressResponse"));
}

#[test]
fn revoke_by_rule_id_only_in_its_direction() {
    let mut w = World::demo();
    let ingress = "sgr-0a000000000000022";
    let p = |id: &str, group: &str| params(&[("GroupId", group), ("SecurityGroupRuleId.1", id)]);
    // An outbound rule id is not an inbound rule.
    let a = revoke(
        &mut w,
        &p("sgr-0e000000000000022", DEMO_ENDPOINT_SG),
        "r",
        false,
    );
    assert_eq!(a.detail, "InvalidSecurityGroupRuleId.NotFound");
    let a = revoke(&mut w, &p(ingress, DEMO_INSTANCE_SG), "r", false);
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        !rules_of(&w, DEMO_INSTANCE_SG)
            .iter()
            .any(|r| r.id == ingress)
    );
    assert!(
        rules_of(&w, DEMO_INSTANCE_SG)
            .iter()
            .any(|r| r.id == "sgr-0a000000000003389")
    );
    let a = revoke(&mut w, &p(ingress, DEMO_INSTANCE_SG), "r", false);
    assert_eq!(a.detail, "InvalidSecurityGroupRuleId.NotFound");
}

#[test]
fn preserve_client_ip_is_ipv4_only() {
    let mut w = World::demo();
    let id = w.endpoints[0].id.clone();
    let on = params(&[
        ("InstanceConnectEndpointId", &id),
        ("PreserveClientIp", "true"),
    ]);
    let off = params(&[
        ("InstanceConnectEndpointId", &id),
        ("PreserveClientIp", "false"),
    ]);
    assert_eq!(modify_endpoint(&mut w, &off, "r").status, 200);
    assert!(!w.endpoints[0].preserve_client_ip);
    assert_eq!(w.endpoints[0].state, "update-in-progress");
    super::endpoint_writes::settle_updates(&mut w);
    assert_eq!(w.endpoints[0].state, "update-complete");
    assert_eq!(modify_endpoint(&mut w, &on, "r").status, 200);
    assert!(w.endpoints[0].preserve_client_ip);
    // No second change while one is in progress.
    let a = modify_endpoint(&mut w, &off, "r");
    assert_eq!(a.detail, "IncorrectState", "{}", a.body);
    super::endpoint_writes::settle_updates(&mut w);

    w.endpoints[0].preserve_client_ip = false;
    w.endpoints[0].ip_address_type = "dualstack".into();
    let a = modify_endpoint(&mut w, &on, "r");
    assert_eq!(a.status, 400);
    assert!(
        a.body
            .contains("Client IP preservation isn't supported for Dualstack and IPv6"),
        "{}",
        a.body
    );
    assert!(!w.endpoints[0].preserve_client_ip);
    let missing = params(&[
        ("InstanceConnectEndpointId", "eice-00000000000000000"),
        ("PreserveClientIp", "true"),
    ]);
    assert_eq!(
        modify_endpoint(&mut w, &missing, "r").detail,
        "InvalidInstanceConnectEndpointId.NotFound"
    );
}

#[test]
fn network_interfaces_by_group() {
    let w = World::demo();
    let p = params(&[
        ("Filter.1.Name", "group-id"),
        ("Filter.1.Value.1", DEMO_INSTANCE_SG),
    ]);
    let a = describe_network_interfaces(&w, &p, "r");
    assert_eq!(a.status, 200, "{}", a.body);
    // Both vpc-1 instances use the group; the endpoint does not.
    assert!(
        a.body
            .contains("<instanceId>i-0123456789abcdef0</instanceId>")
    );
    assert!(
        a.body
            .contains("<instanceId>i-0000000000000dead</instanceId>")
    );
    assert!(!a.body.contains("ec2_instance_connect_endpoint"));
    let p = params(&[
        ("Filter.1.Name", "group-id"),
        ("Filter.1.Value.1", DEMO_ENDPOINT_SG),
    ]);
    let a = describe_network_interfaces(&w, &p, "r");
    assert!(
        a.body
            .contains("<interfaceType>ec2_instance_connect_endpoint</interfaceType>")
    );
    assert!(!a.body.contains("<instanceId>"));
}
