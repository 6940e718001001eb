//! The HTTPS API listener: the EC2 Query API and the EC2 Instance Connect
//! JSON API share it, told apart the way the SDKs address them (a JSON
//! request carries `X-Amz-Target`, a Query request a form body with
//! `Action=`).
//!
//! Element names follow the `aws-sdk-ec2` deserializers
//! (`protocol_serde/shape_*.rs`): EC2 answers use lower-camel-case names,
//! lists are `<…Set><item>…</item></…Set>`, and errors are
//! `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::sigv4::{self, AuthError, Expected};
use super::{Endpoint, Instance, Peer, Shared, World, unix_now};

/// Accepts connections until the simulator is dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut stop = shutdown.clone();
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!("sim api accept: {e}");
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let conn = async {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(handle(req, &shared).await) }
                });
                if let Err(e) = http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await
                {
                    tracing::debug!("sim api connection: {e}");
                }
            };
            tokio::select! {
                _ = conn => {}
                _ = stop.changed() => {}
            }
        });
    }
}

/// An answer before it becomes an HTTP response.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Error code, or a short description of a success, for the log.
    pub detail: String,
    /// `x-amzn-ErrorType` for JSON errors.
    pub error_type: Option<String>,
}

const XML: &str = "text/xml;charset=UTF-8";
const JSON: &str = "application/x-amz-json-1.1";
const EC2_NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";
const OWNER_ID: &str = "123456789012";
const TARGET_PREFIX: &str = "AWSEC2InstanceConnectService.";

async fn handle(req: http::Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return respond(413, "text/plain", "request body too large".into(), "", None),
    };
    let latency = shared.state().api_latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let request_id = shared.request_id();
    let (op, answer) = if let Some(target) = parts.headers.get("x-amz-target") {
        let target = String::from_utf8_lossy(target.as_bytes()).into_owned();
        let op = target
            .strip_prefix(TARGET_PREFIX)
            .unwrap_or(&target)
            .to_string();
        let answer = instance_connect(&parts, &body, &op, shared, &request_id);
        (op, answer)
    } else {
        ec2(&parts, &body, shared, &request_id)
    };
    shared.record(&op, started, answer.status, &answer.detail);
    let mut resp = respond(
        answer.status,
        answer.content_type,
        answer.body,
        &request_id,
        answer.error_type.as_deref(),
    );
    if let Ok(v) = http::HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amz-request-id", v);
    }
    resp
}

fn respond(
    status: u16,
    content_type: &'static str,
    body: String,
    request_id: &str,
    error_type: Option<&str>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    if let Some(t) = error_type.and_then(|t| http::HeaderValue::from_str(t).ok()) {
        h.insert("x-amzn-errortype", t);
    }
    resp
}

fn expected<'a>(region: &'a str, service: &'a str) -> Expected<'a> {
    Expected {
        region,
        service,
        now: unix_now(),
    }
}

fn verify(
    parts: &http::request::Parts,
    body: &[u8],
    shared: &Shared,
    region: &str,
    service: &str,
) -> Result<String, AuthError> {
    sigv4::verify_header_auth(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &parts.headers,
        body,
        &shared.identities,
        &expected(region, service),
    )
}

// ---------------------------------------------------------------------------
// EC2 Query API

fn ec2(
    parts: &http::request::Parts,
    body: &[u8],
    shared: &Shared,
    request_id: &str,
) -> (String, Answer) {
    let is_form = header_contains(&parts.headers, "content-type", "x-www-form-urlencoded");
    let raw: &[u8] = if is_form {
        body
    } else {
        parts.uri.query().unwrap_or("").as_bytes()
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let action = param(&params, "Action").unwrap_or("").to_string();
    let op = if action.is_empty() {
        "Unknown".to_string()
    } else {
        action.clone()
    };
    let region = shared.state().world.region.clone();

    if let Err(e) = verify(parts, body, shared, &region, "ec2") {
        let (status, code) = match &e {
            AuthError::Missing => (401, "MissingAuthenticationToken"),
            AuthError::Malformed(_) => (400, "IncompleteSignature"),
            AuthError::UnknownKey | AuthError::BadToken => (401, "AuthFailure"),
            AuthError::Expired(_) => (400, "RequestExpired"),
            AuthError::BadPayloadHash => (400, "XAmzContentSHA256Mismatch"),
            AuthError::WrongScope(_) | AuthError::Mismatch => (403, "SignatureDoesNotMatch"),
        };
        let message = match &e {
            AuthError::UnknownKey | AuthError::BadToken => {
                "AWS was not able to validate the provided access credentials".to_string()
            }
            other => other.message(),
        };
        return (op, ec2_error(status, code, &message, request_id));
    }
    if let Some(f) = shared.take_failure(&op) {
        return (op, ec2_error(f.status, &f.code, &f.message, request_id));
    }
    let world = shared.state().world.clone();
    let answer = match action.as_str() {
        "DescribeInstances" => describe_instances(&world, &params, request_id),
        "GetConsoleOutput" => get_console_output(&world, &params, request_id),
        "DescribeSecurityGroupRules" => describe_security_group_rules(&world, &params, request_id),
        "DescribeSubnets" => describe_subnets(&world, &params, request_id),
        "DescribeVpcs" => describe_vpcs(&world, &params, request_id),
        "DescribeInstanceConnectEndpoints" => describe_endpoints(
            &world,
            &params,
            request_id,
            &shared.eice_dns,
            &shared.fips_dns,
        ),
        "" => ec2_error(
            400,
            "MissingAction",
            "The request must contain the parameter Action",
            request_id,
        ),
        other => ec2_error(
            400,
            "InvalidAction",
            &format!("The action {other} is not valid for this web service."),
            request_id,
        ),
    };
    (op, answer)
}

fn header_contains(headers: &HeaderMap, name: &str, needle: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains(needle))
}

fn param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The members of a Query list `Prefix.1`, `Prefix.2`, … in index order.
fn list(params: &[(String, String)], prefix: &str) -> Vec<String> {
    let mut items: BTreeMap<u32, String> = BTreeMap::new();
    for (k, v) in params {
        if let Some(n) = k
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('.'))
            .and_then(|n| n.parse().ok())
        {
            items.insert(n, v.clone());
        }
    }
    items.into_values().collect()
}

/// `Filter.N.Name` / `Filter.N.Value.M` pairs in index order.
fn filters(params: &[(String, String)]) -> Vec<(String, Vec<String>)> {
    let mut by_index: BTreeMap<u32, (Option<String>, BTreeMap<u32, String>)> = BTreeMap::new();
    for (k, v) in params {
        let Some(rest) = k.strip_prefix("Filter.") else {
            continue;
        };
        let Some((n, field)) = rest.split_once('.') else {
            continue;
        };
        let Ok(n) = n.parse::<u32>() else { continue };
        let entry = by_index.entry(n).or_default();
        if field == "Name" {
            entry.0 = Some(v.clone());
        } else if let Some(m) = field
            .strip_prefix("Value.")
            .and_then(|m| m.parse::<u32>().ok())
        {
            entry.1.insert(m, v.clone());
        }
    }
    by_index
        .into_values()
        .filter_map(|(name, values)| name.map(|n| (n, values.into_values().collect())))
        .collect()
}

/// A filter name and how to read its value from an item.
type FilterField<T> = (&'static str, fn(&T) -> Option<&str>);

/// Keep the items that every `Filter.N` matches (any of its values). A
/// filter name not in `fields` is refused, as EC2 does.
fn apply_filters<T>(
    selected: &mut Vec<&T>,
    params: &[(String, String)],
    fields: &[FilterField<T>],
    request_id: &str,
) -> Result<(), Answer> {
    for (name, values) in filters(params) {
        let Some((_, field)) = fields.iter().find(|(n, _)| *n == name) else {
            return Err(ec2_error(
                400,
                "InvalidParameterValue",
                &format!("The filter '{name}' is invalid"),
                request_id,
            ));
        };
        selected.retain(|item| field(item).is_some_and(|v| values.iter().any(|w| w == v)));
    }
    Ok(())
}

pub(crate) fn ec2_error(status: u16, code: &str, message: &str, request_id: &str) -> Answer {
    Answer {
        status,
        content_type: XML,
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
            esc(code),
            esc(message),
            esc(request_id)
        ),
        detail: code.to_string(),
        error_type: None,
    }
}

/// Escapes text for XML element content (quotes need no escaping there,
/// and EC2 leaves them alone).
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn is_hex_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|h| {
        (h.len() == 8 || h.len() == 17)
            && h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

/// One page of `items` and the token for the next, if any.
///
/// Tokens are opaque strings that name the op, so a token from one
/// operation is refused by another.
pub(crate) fn paginate<T: Clone>(
    items: &[T],
    kind: &str,
    page_size: usize,
    next_token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), String> {
    let start = match next_token {
        None | Some("") => 0,
        Some(t) => t
            .strip_prefix(kind)
            .and_then(|r| r.strip_prefix(".page."))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| format!("Invalid NextToken: {t}"))?,
    };
    let end = start.saturating_add(page_size).min(items.len());
    let page = items.get(start..end).map(<[T]>::to_vec).unwrap_or_default();
    let next = (end < items.len()).then(|| format!("{kind}.page.{end}"));
    Ok((page, next))
}

fn parse_max_results(
    params: &[(String, String)],
    range: std::ops::RangeInclusive<usize>,
) -> Result<Option<usize>, String> {
    match param(params, "MaxResults") {
        None => Ok(None),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| range.contains(n))
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "Value ( {v} ) for parameter maxResults is invalid. Expecting a value between {} and {}.",
                    range.start(),
                    range.end()
                )
            }),
    }
}

fn state_code(state: &str) -> u16 {
    match state {
        "pending" => 0,
        "running" => 16,
        "shutting-down" => 32,
        "terminated" => 48,
        "stopping" => 64,
        "stopped" => 80,
        _ => 0,
    }
}

/// `DescribeInstances`: `InstanceId.N`, filters, and paging when asked for.
pub(crate) fn describe_instances(
    world: &World,
    params: &[(String, String)],
    request_id: &str,
) -> Answer {
    let ids = list(params, "InstanceId");
    if let Some(bad) = ids.iter().find(|id| !is_hex_id(id, "i-")) {
        return ec2_error(
            400,
            "InvalidInstanceID.Malformed",
            &format!("Invalid id: \"{bad}\""),
            request_id,
        );
    }
    let missing: Vec<&str> = ids
        .iter()
        .filter(|id| world.instance(id).is_none())
        .map(String::as_str)
        .collect();
    match missing.as_slice() {
        [] => {}
        [one] => {
            return ec2_error(
                400,
                "InvalidInstanceID.NotFound",
                &format!("The instance ID '{one}' does not exist"),
                request_id,
            );
        }
        many => {
            return ec2_error(
                400,
                "InvalidInstanceID.NotFound",
                &format!("The instance IDs '{}' do not exist", many.join(", ")),
                request_id,
            );
        }
    }
    let max_results = match parse_max_results(params, 5..=1000) {
        Ok(m) => m,
        Err(msg) => return ec2_error(400, "InvalidParameterValue", &msg, request_id),
    };
    if max_results.is_some() && !ids.is_empty() {
        return ec2_error(
            400,
            "InvalidParameterCombination",
            "The parameter instancesSet cannot be used with the parameter maxResults",
            request_id,
        );
    }
    let mut selected: Vec<&Instance> = world
        .instances
        .iter()
        .filter(|i| ids.is_empty() || ids.contains(&i.id))
        .collect();
    let fields: &[FilterField<Instance>] = &[
        ("instance-id", |i| Some(&i.id)),
        ("instance-state-name", |i| Some(&i.state)),
        ("vpc-id", |i| Some(&i.vpc_id)),
        ("subnet-id", |i| Some(&i.subnet_id)),
        ("private-ip-address", |i| i.private_ip.as_deref()),
        ("availability-zone", |i| Some(&i.availability_zone)),
    ];
    if let Err(answer) = apply_filters(&mut selected, params, fields, request_id) {
        return answer;
    }
    let page_size = max_results.unwrap_or(usize::MAX);
    let (page, next) = match paginate(
        &selected,
        "instances",
        page_size,
        param(params, "NextToken"),
    ) {
        Ok(p) => p,
        Err(msg) => return ec2_error(400, "InvalidPaginationToken", &msg, request_id),
    };

    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeInstancesResponse xmlns=\"{EC2_NS}\">\n<requestId>{}</requestId>\n<reservationSet>\n",
        esc(request_id)
    );
    for inst in &page {
        let _ = write!(
            xml,
            "<item><reservationId>r-{}</reservationId><ownerId>{OWNER_ID}</ownerId><groupSet/><instancesSet><item>",
            short_hash(&inst.id)
        );
        let _ = write!(
            xml,
            "<instanceId>{}</instanceId><imageId>ami-0123456789abcdef0</imageId>\
             <instanceState><code>{}</code><name>{}</name></instanceState>\
             <instanceType>t3.micro</instanceType>\
             <placement><availabilityZone>{}</availabilityZone><tenancy>default</tenancy></placement>\
             <subnetId>{}</subnetId><vpcId>{}</vpcId>",
            esc(&inst.id),
            state_code(&inst.state),
            esc(&inst.state),
            esc(&inst.availability_zone),
            esc(&inst.subnet_id),
            esc(&inst.vpc_id),
        );
        if let Some(ip) = &inst.private_ip {
            let _ = write!(
                xml,
                "<privateDnsName>ip-{}.ec2.internal</privateDnsName><privateIpAddress>{}</privateIpAddress>",
                esc(&ip.replace('.', "-")),
                esc(ip)
            );
        }
        // The instance's groups are its primary interface's; every
        // interface lists its own.
        xml.push_str("<groupSet>");
        if let Some(primary) = inst.network_interfaces.first() {
            group_items(&mut xml, world, &primary.security_group_ids);
        }
        xml.push_str("</groupSet><networkInterfaceSet>");
        for (n, nic) in inst.network_interfaces.iter().enumerate() {
            let _ = write!(
                xml,
                "<item><networkInterfaceId>{}</networkInterfaceId><subnetId>{}</subnetId><vpcId>{}</vpcId>\
                 <ownerId>{OWNER_ID}</ownerId><status>in-use</status><interfaceType>interface</interfaceType>",
                esc(&nic.id),
                esc(&inst.subnet_id),
                esc(&inst.vpc_id),
            );
            if n == 0
                && let Some(ip) = &inst.private_ip
            {
                let _ = write!(xml, "<privateIpAddress>{}</privateIpAddress>", esc(ip));
            }
            xml.push_str("<groupSet>");
            group_items(&mut xml, world, &nic.security_group_ids);
            xml.push_str("</groupSet></item>");
        }
        xml.push_str("</networkInterfaceSet>");
        xml.push_str("<architecture>x86_64</architecture></item></instancesSet></item>\n");
    }
    xml.push_str("</reservationSet>\n");
    if let Some(t) = next {
        let _ = writeln!(xml, "<nextToken>{}</nextToken>", esc(&t));
    }
    xml.push_str("</DescribeInstancesResponse>\n");
    Answer {
        status: 200,
        content_type: XML,
        body: xml,
        detail: format!("{} instance(s)", page.len()),
        error_type: None,
    }
}

/// `<item><groupId/><groupName/></item>` for each group.
fn group_items(xml: &mut String, world: &World, groups: &[String]) {
    for g in groups {
        let name = world
            .security_groups
            .iter()
            .find(|sg| &sg.id == g)
            .map_or("default", |sg| sg.name.as_str());
        let _ = write!(
            xml,
            "<item><groupId>{}</groupId><groupName>{}</groupName></item>",
            esc(g),
            esc(name)
        );
    }
}

/// Page size for `DescribeSecurityGroupRules` without `MaxResults`: small
/// on purpose, so clients must page.
pub(crate) const DEFAULT_RULE_PAGE: usize = 3;

/// `DescribeSecurityGroupRules`: `SecurityGroupRuleId.N`, `group-id` and
/// `security-group-rule-id` filters, and real paging.
pub(crate) fn describe_security_group_rules(
    world: &World,
    params: &[(String, String)],
    request_id: &str,
) -> Answer {
    let ids = list(params, "SecurityGroupRuleId");
    let max_results = match parse_max_results(params, 5..=1000) {
        Ok(m) => m,
        Err(msg) => return ec2_error(400, "InvalidParameterValue", &msg, request_id),
    };
    let mut selected: Vec<(&str, &super::SgRule)> = world
        .security_groups
        .iter()
        .flat_map(|g| g.rules.iter().map(move |r| (g.id.as_str(), r)))
        .filter(|(_, r)| ids.is_empty() || ids.contains(&r.id))
        .collect();
    for (name, values) in filters(params) {
        match name.as_str() {
            "group-id" => selected.retain(|(g, _)| values.iter().any(|v| v == g)),
            "security-group-rule-id" => selected.retain(|(_, r)| values.contains(&r.id)),
            other => {
                return ec2_error(
                    400,
                    "InvalidParameterValue",
                    &format!("The filter '{other}' is invalid"),
                    request_id,
                );
            }
        }
    }
    let page_size = max_results.unwrap_or(DEFAULT_RULE_PAGE);
    let (page, next) = match paginate(&selected, "sgr", page_size, param(params, "NextToken")) {
        Ok(p) => p,
        Err(msg) => return ec2_error(400, "InvalidPaginationToken", &msg, request_id),
    };
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeSecurityGroupRulesResponse xmlns=\"{EC2_NS}\">\n<requestId>{}</requestId>\n<securityGroupRuleSet>\n",
        esc(request_id)
    );
    for (group, r) in &page {
        let _ = write!(
            xml,
            "<item><securityGroupRuleId>{id}</securityGroupRuleId><groupId>{group}</groupId>\
             <groupOwnerId>{OWNER_ID}</groupOwnerId><isEgress>{egress}</isEgress>\
             <ipProtocol>{proto}</ipProtocol><fromPort>{from}</fromPort><toPort>{to}</toPort>",
            id = esc(&r.id),
            group = esc(group),
            egress = r.egress,
            proto = esc(&r.protocol),
            from = r.from_port,
            to = r.to_port,
        );
        match &r.peer {
            Peer::Cidr(c) => {
                let _ = write!(xml, "<cidrIpv4>{}</cidrIpv4>", esc(c));
            }
            Peer::Group(g) => {
                let _ = write!(
                    xml,
                    "<referencedGroupInfo><groupId>{}</groupId><userId>{OWNER_ID}</userId></referencedGroupInfo>",
                    esc(g)
                );
            }
            Peer::PrefixList(p) => {
                let _ = write!(xml, "<prefixListId>{}</prefixListId>", esc(p));
            }
        }
        let _ = writeln!(
            xml,
            "<securityGroupRuleArn>arn:aws:ec2:{}:{OWNER_ID}:security-group-rule/{}</securityGroupRuleArn><tagSet/></item>",
            esc(&world.region),
            esc(&r.id)
        );
    }
    xml.push_str("</securityGroupRuleSet>\n");
    if let Some(t) = next {
        let _ = writeln!(xml, "<nextToken>{}</nextToken>", esc(&t));
    }
    xml.push_str("</DescribeSecurityGroupRulesResponse>\n");
    Answer {
        status: 200,
        content_type: XML,
        body: xml,
        detail: format!("{} rule(s)", page.len()),
        error_type: None,
    }
}

/// `DescribeSubnets`: `SubnetId.N` and `subnet-id`/`vpc-id` filters.
pub(crate) fn describe_subnets(
    world: &World,
    params: &[(String, String)],
    request_id: &str,
) -> Answer {
    let ids = list(params, "SubnetId");
    if let Some(missing) = ids
        .iter()
        .find(|id| !world.subnets.iter().any(|s| &s.id == *id))
    {
        return ec2_error(
            400,
            "InvalidSubnetID.NotFound",
            &format!("The subnet ID '{missing}' does not exist"),
            request_id,
        );
    }
    let mut selected: Vec<&super::Subnet> = world
        .subnets
        .iter()
        .filter(|s| ids.is_empty() || ids.contains(&s.id))
        .collect();
    let fields: &[FilterField<super::Subnet>] = &[
        ("subnet-id", |s| Some(&s.id)),
        ("vpc-id", |s| Some(&s.vpc_id)),
    ];
    if let Err(answer) = apply_filters(&mut selected, params, fields, request_id) {
        return answer;
    }
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeSubnetsResponse xmlns=\"{EC2_NS}\">\n<requestId>{}</requestId>\n<subnetSet>\n",
        esc(request_id)
    );
    for s in &selected {
        let _ = writeln!(
            xml,
            "<item><subnetId>{}</subnetId><state>available</state><vpcId>{}</vpcId>\
             <cidrBlock>{}</cidrBlock><availabilityZone>{}</availabilityZone>\
             <ownerId>{OWNER_ID}</ownerId><tagSet/></item>",
            esc(&s.id),
            esc(&s.vpc_id),
            esc(&s.cidr),
            esc(&s.availability_zone),
        );
    }
    xml.push_str("</subnetSet>\n</DescribeSubnetsResponse>\n");
    Answer {
        status: 200,
        content_type: XML,
        body: xml,
        detail: format!("{} subnet(s)", selected.len()),
        error_type: None,
    }
}

/// `DescribeVpcs`: `VpcId.N` and the `vpc-id` filter.
pub(crate) fn describe_vpcs(
    world: &World,
    params: &[(String, String)],
    request_id: &str,
) -> Answer {
    let mut ids = list(params, "VpcId");
    for (name, values) in filters(params) {
        if name != "vpc-id" {
            return ec2_error(
                400,
                "InvalidParameterValue",
                &format!("The filter '{name}' is invalid"),
                request_id,
            );
        }
        ids.extend(values);
    }
    if let Some(missing) = ids
        .iter()
        .find(|id| !world.vpcs.iter().any(|v| &v.id == *id))
    {
        return ec2_error(
            400,
            "InvalidVpcID.NotFound",
            &format!("The vpc ID '{missing}' does not exist"),
            request_id,
        );
    }
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeVpcsResponse xmlns=\"{EC2_NS}\">\n<requestId>{}</requestId>\n<vpcSet>\n",
        esc(request_id)
    );
    let selected: Vec<&super::Vpc> = world
        .vpcs
        .iter()
        .filter(|v| ids.is_empty() || ids.contains(&v.id))
        .collect();
    for v in &selected {
        let primary = v.cidrs.first().map(String::as_str).unwrap_or_default();
        let _ = write!(
            xml,
            "<item><vpcId>{}</vpcId><ownerId>{OWNER_ID}</ownerId><state>available</state>\
             <cidrBlock>{}</cidrBlock><cidrBlockAssociationSet>",
            esc(&v.id),
            esc(primary),
        );
        for (n, c) in v.cidrs.iter().enumerate() {
            let _ = write!(
                xml,
                "<item><associationId>vpc-cidr-assoc-{}</associationId><cidrBlock>{}</cidrBlock>\
                 <cidrBlockState><state>associated</state></cidrBlockState></item>",
                &short_hash(&format!("{}/{n}", v.id)),
                esc(c),
            );
        }
        xml.push_str(
            "</cidrBlockAssociationSet><instanceTenancy>default</instanceTenancy><isDefault>false</isDefault><tagSet/></item>\n",
        );
    }
    xml.push_str("</vpcSet>\n</DescribeVpcsResponse>\n");
    Answer {
        status: 200,
        content_type: XML,
        body: xml,
        detail: format!("{} vpc(s)", selected.len()),
        error_type: None,
    }
}

/// `GetConsoleOutput`: the instance's `console_output`, base64-encoded.
/// `Latest` is accepted either way (as on Nitro instances).
pub(crate) fn get_console_output(
    world: &World,
    params: &[(String, String)],
    request_id: &str,
) -> Answer {
    let Some(id) = param(params, "InstanceId") else {
        return ec2_error(
            400,
            "MissingParameter",
            "The request must contain the parameter InstanceId",
            request_id,
        );
    };
    if !is_hex_id(id, "i-") {
        return ec2_error(
            400,
            "InvalidInstanceID.Malformed",
            &format!("Invalid id: \"{id}\""),
            request_id,
        );
    }
    let Some(inst) = world.instance(id) else {
        return ec2_error(
            400,
            "InvalidInstanceID.NotFound",
            &format!("The instance ID '{id}' does not exist"),
            request_id,
        );
    };
    if inst.console_denied {
        return ec2_error(
            403,
            "UnauthorizedOperation",
            &format!(
                "You are not authorized to perform this operation. User: arn:aws:iam::{OWNER_ID}:user/sim \
                 is not authorized to perform: ec2:GetConsoleOutput on resource: \
                 arn:aws:ec2:{}:{OWNER_ID}:instance/{id} because no identity-based policy allows the \
                 ec2:GetConsoleOutput action",
                world.region
            ),
            request_id,
        );
    }
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetConsoleOutputResponse xmlns=\"{EC2_NS}\">\n<requestId>{}</requestId>\n<instanceId>{}</instanceId>\n<timestamp>{}</timestamp>\n",
        esc(request_id),
        esc(id),
        super::sigv4::format_iso8601(unix_now()),
    );
    if let Some(text) = &inst.console_output {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
        let _ = writeln!(xml, "<output>{b64}</output>");
    }
    xml.push_str("</GetConsoleOutputResponse>\n");
    Answer {
        status: 200,
        content_type: XML,
        body: xml,
        detail: if inst.console_output.is_some() {
            "output".to_string()
        } else {
            "no output".to_string()
        },
        error_type: None,
    }
}

/// Page size when the caller gives no `MaxResults`: small on purpose, so
/// clients must page.
pub(crate) const DEFAULT_ENDPOINT_PAGE: usize = 2;

/// `DescribeInstanceConnectEndpoints`: ids, `vpc-id`/`state`/`subnet-id`/
/// `instance-connect-endpoint-id` filters, and real paging.
pub(crate) fn describe_endpoints(
    world: &World,
    params: &[(String, String)],
    request_id: &str,
    dns: &str,
    fips_dns: &str,
) -> Answer {
    let ids = list(params, "InstanceConnectEndpointId");
    if let Some(bad) = ids.iter().find(|id| !is_hex_id(id, "eice-")) {
        return ec2_error(
            400,
            "InvalidInstanceConnectEndpointId.Malformed",
            &format!("Invalid id: \"{bad}\""),
            request_id,
        );
    }
    if let Some(missing) = ids.iter().find(|id| world.endpoint(id).is_none()) {
        return ec2_error(
            400,
            "InvalidInstanceConnectEndpointId.NotFound",
            &format!("The instanceConnectEndpoint ID '{missing}' does not exist"),
            request_id,
        );
    }
    let max_results = match parse_max_results(params, 1..=50) {
        Ok(m) => m,
        Err(msg) => return ec2_error(400, "InvalidParameterValue", &msg, request_id),
    };
    let mut selected: Vec<&Endpoint> = world
        .endpoints
        .iter()
        .filter(|e| ids.is_empty() || ids.contains(&e.id))
        .collect();
    let fields: &[FilterField<Endpoint>] = &[
        ("vpc-id", |e| Some(&e.vpc_id)),
        ("state", |e| Some(&e.state)),
        ("subnet-id", |e| Some(&e.subnet_id)),
        ("instance-connect-endpoint-id", |e| Some(&e.id)),
    ];
    if let Err(answer) = apply_filters(&mut selected, params, fields, request_id) {
        return answer;
    }
    let page_size = max_results.unwrap_or(DEFAULT_ENDPOINT_PAGE);
    let (page, next) = match paginate(&selected, "eice", page_size, param(params, "NextToken")) {
        Ok(p) => p,
        Err(msg) => return ec2_error(400, "InvalidPaginationToken", &msg, request_id),
    };

    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeInstanceConnectEndpointsResponse xmlns=\"{EC2_NS}\">\n<requestId>{}</requestId>\n<instanceConnectEndpointSet>\n",
        esc(request_id)
    );
    for e in &page {
        let az = world
            .instances
            .iter()
            .find(|i| i.subnet_id == e.subnet_id)
            .map(|i| i.availability_zone.clone())
            .unwrap_or_else(|| format!("{}a", world.region));
        let _ = write!(
            xml,
            "<item><ownerId>{OWNER_ID}</ownerId>\
             <instanceConnectEndpointId>{id}</instanceConnectEndpointId>\
             <instanceConnectEndpointArn>arn:aws:ec2:{region}:{OWNER_ID}:instance-connect-endpoint/{id}</instanceConnectEndpointArn>\
             <state>{state}</state><stateMessage/>\
             <dnsName>{dns}</dnsName>",
            id = esc(&e.id),
            region = esc(&world.region),
            state = esc(&e.state),
            dns = esc(dns),
        );
        if e.fips {
            let _ = write!(xml, "<fipsDnsName>{}</fipsDnsName>", esc(fips_dns));
        }
        let _ = write!(
            xml,
            "<networkInterfaceIdSet><item>eni-{eni}</item></networkInterfaceIdSet>\
             <vpcId>{vpc}</vpcId><availabilityZone>{az}</availabilityZone>\
             <createdAt>2023-06-13T12:00:00.000Z</createdAt>\
             <subnetId>{subnet}</subnetId>\
             <preserveClientIp>{pci}</preserveClientIp>\
             <securityGroupIdSet>",
            eni = short_hash(&e.id),
            vpc = esc(&e.vpc_id),
            az = esc(&az),
            subnet = esc(&e.subnet_id),
            pci = e.preserve_client_ip,
        );
        for sg in &e.security_group_ids {
            let _ = write!(xml, "<item>{}</item>", esc(sg));
        }
        let _ = writeln!(
            xml,
            "</securityGroupIdSet><ipAddressType>{}</ipAddressType><tagSet/></item>",
            esc(&e.ip_address_type)
        );
    }
    xml.push_str("</instanceConnectEndpointSet>\n");
    if let Some(t) = next {
        let _ = writeln!(xml, "<nextToken>{}</nextToken>", esc(&t));
    }
    xml.push_str("</DescribeInstanceConnectEndpointsResponse>\n");
    Answer {
        status: 200,
        content_type: XML,
        body: xml,
        detail: format!("{} endpoint(s)", page.len()),
        error_type: None,
    }
}

/// 17 hex digits derived from a string, for stable made-up ids.
fn short_hash(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(s.as_bytes()))[..17].to_string()
}

// ---------------------------------------------------------------------------
// EC2 Instance Connect (awsJson1_1)

pub(crate) fn json_error(status: u16, code: &str, message: &str) -> Answer {
    Answer {
        status,
        content_type: JSON,
        body: serde_json::json!({ "__type": code, "Message": message }).to_string(),
        detail: code.to_string(),
        error_type: Some(code.to_string()),
    }
}

fn instance_connect(
    parts: &http::request::Parts,
    body: &[u8],
    op: &str,
    shared: &Shared,
    request_id: &str,
) -> Answer {
    let region = shared.state().world.region.clone();
    if let Err(e) = verify(parts, body, shared, &region, "ec2-instance-connect") {
        let code = match &e {
            AuthError::Missing => "MissingAuthenticationTokenException",
            AuthError::Malformed(_) => "IncompleteSignatureException",
            AuthError::UnknownKey | AuthError::BadToken => "UnrecognizedClientException",
            AuthError::Expired(_)
            | AuthError::BadPayloadHash
            | AuthError::WrongScope(_)
            | AuthError::Mismatch => "InvalidSignatureException",
        };
        return json_error(400, code, &e.message());
    }
    if let Some(f) = shared.take_failure(op) {
        return json_error(f.status, &f.code, &f.message);
    }
    match op {
        "SendSSHPublicKey" => send_ssh_public_key(body, shared, request_id),
        other => json_error(
            400,
            "UnknownOperationException",
            &format!("Operation {other} is not supported by the simulator"),
        ),
    }
}

fn send_ssh_public_key(body: &[u8], shared: &Shared, request_id: &str) -> Answer {
    let invalid = |m: &str| json_error(400, "InvalidArgsException", m);
    let Ok(serde_json::Value::Object(req)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return json_error(
            400,
            "SerializationException",
            "Request body is not a JSON object",
        );
    };
    let field = |name: &str| req.get(name).and_then(serde_json::Value::as_str);
    let (Some(instance_id), Some(user), Some(key)) = (
        field("InstanceId"),
        field("InstanceOSUser"),
        field("SSHPublicKey"),
    ) else {
        return invalid("InstanceId, InstanceOSUser and SSHPublicKey are required");
    };
    if !valid_os_user(user) {
        return invalid(&format!("Invalid InstanceOSUser: {user}"));
    }
    if let Err(m) = validate_public_key(key) {
        return invalid(&m);
    }
    let (instance, lifetime) = {
        let st = shared.state();
        (st.world.instance(instance_id).cloned(), st.key_lifetime)
    };
    let Some(instance) = instance else {
        return json_error(
            400,
            "EC2InstanceNotFoundException",
            &format!("Instance {instance_id} not found"),
        );
    };
    if let Some(az) = field("AvailabilityZone")
        && az != instance.availability_zone
    {
        return invalid(&format!(
            "Instance {instance_id} is not in availability zone {az}"
        ));
    }
    if instance.state != "running" {
        return json_error(
            400,
            "EC2InstanceStateInvalidException",
            &format!(
                "Instance {instance_id} is not in a valid state for this operation (state: {})",
                instance.state
            ),
        );
    }
    if let Err(e) = shared.keys.push(instance_id, user, key.trim(), lifetime) {
        return json_error(500, "ServiceException", &format!("storing the key: {e}"));
    }
    Answer {
        status: 200,
        content_type: JSON,
        body: serde_json::json!({ "RequestId": request_id, "Success": true }).to_string(),
        detail: format!("{user}@{instance_id}"),
        error_type: None,
    }
}

/// The service's pattern for `InstanceOSUser`:
/// `^[A-Za-z_][A-Za-z0-9\@\._-]{0,30}[A-Za-z0-9\$_-]?$`.
fn valid_os_user(user: &str) -> bool {
    let b = user.as_bytes();
    let Some((first, rest)) = b.split_first() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || *first == b'_') || b.len() > 32 {
        return false;
    }
    let middle = |c: &u8| c.is_ascii_alphanumeric() || b"@._-".contains(c);
    let last = |c: &u8| c.is_ascii_alphanumeric() || b"$_-".contains(c);
    match rest.split_last() {
        None => true,
        Some((l, mid)) => mid.iter().all(middle) && (middle(l) || last(l)),
    }
}

/// Accepts what the service accepts: one OpenSSH public key line of type
/// ed25519, ecdsa, or RSA with at least 2048 bits.
pub(crate) fn validate_public_key(key: &str) -> Result<(), String> {
    let key = key.trim();
    if key.len() < 80 || key.len() > 4096 {
        return Err("SSHPublicKey length must be between 80 and 4096".to_string());
    }
    if key.contains('\n') {
        return Err("SSHPublicKey must be a single line".to_string());
    }
    let parsed = russh::keys::PublicKey::from_openssh(key)
        .map_err(|e| format!("SSHPublicKey is not a valid OpenSSH public key: {e}"))?;
    let data = parsed.key_data();
    if data.is_ed25519() || data.is_ecdsa() {
        return Ok(());
    }
    if let Some(rsa) = data.rsa() {
        return if rsa.key_size() >= 2048 {
            Ok(())
        } else {
            Err(format!(
                "RSA keys must be at least 2048 bits, this one has {}",
                rsa.key_size()
            ))
        };
    }
    Err(format!(
        "Unsupported key type {}: use ed25519, ecdsa or RSA (2048 bits or more)",
        parsed.algorithm()
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

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

    fn ids_in(xml: &str) -> Vec<String> {
        xml.split("<instanceConnectEndpointId>")
            .skip(1)
            .filter_map(|s| s.split('<').next())
            .map(str::to_string)
            .collect()
    }

    fn token_in(xml: &str) -> Option<String> {
        xml.split("<nextToken>")
            .nth(1)
            .and_then(|s| s.split('<').next())
            .map(str::to_string)
    }

    #[test]
    fn endpoint_paging_walks_all_pages() {
        let w = world_with_endpoints(4);
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut p = params(&[("Action", "DescribeInstanceConnectEndpoints")]);
            if let Some(t) = &token {
                p.push(("NextToken".into(), t.clone()));
            }
            let a = describe_endpoints(&w, &p, "rid", "localhost:1", "localhost:2");
            assert_eq!(a.status, 200, "{}", a.body);
            let ids = ids_in(&a.body);
            assert!(ids.len() <= DEFAULT_ENDPOINT_PAGE);
            seen.extend(ids);
            pages += 1;
            token = token_in(&a.body);
            if token.is_none() {
                break;
            }
        }
        assert_eq!(pages, 3);
        let all: Vec<String> = w.endpoints.iter().map(|e| e.id.clone()).collect();
        assert_eq!(seen, all);
    }

    #[test]
    fn endpoint_filters_and_errors() {
        let w = world_with_endpoints(4);
        let p = params(&[
            ("Filter.1.Name", "vpc-id"),
            ("Filter.1.Value.1", "vpc-1"),
            ("Filter.2.Name", "state"),
            ("Filter.2.Value.1", "create-complete"),
            ("Filter.2.Value.2", "update-complete"),
            ("MaxResults", "10"),
        ]);
        let a = describe_endpoints(&w, &p, "rid", "localhost:1", "localhost:2");
        let ids = ids_in(&a.body);
        assert_eq!(ids.len(), 3);
        assert!(token_in(&a.body).is_none());
        assert!(a.body.contains("<fipsDnsName>localhost:2</fipsDnsName>"));
        assert!(a.body.contains("<preserveClientIp>true</preserveClientIp>"));
        assert!(
            a.body
                .contains("<securityGroupIdSet><item>sg-0123456789abcdef0</item>")
        );

        let p = params(&[("InstanceConnectEndpointId.1", "eice-00000000000000099")]);
        let a = describe_endpoints(&w, &p, "rid", "d", "f");
        assert_eq!(a.status, 400);
        assert_eq!(a.detail, "InvalidInstanceConnectEndpointId.NotFound");

        let p = params(&[("NextToken", "garbage")]);
        let a = describe_endpoints(&w, &p, "rid", "d", "f");
        assert_eq!(a.detail, "InvalidPaginationToken");

        let p = params(&[("Filter.1.Name", "color"), ("Filter.1.Value.1", "red")]);
        let a = describe_endpoints(&w, &p, "rid", "d", "f");
        assert_eq!(a.detail, "InvalidParameterValue");
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

        let a = describe_instances(&w, &params(&[("InstanceId.1", "i-0123456789abcdef1")]), "r");
        assert_eq!(a.status, 400);
        assert!(a.body.contains("<Code>InvalidInstanceID.NotFound</Code>"));
        assert!(
            a.body
                .contains("The instance ID 'i-0123456789abcdef1' does not exist")
        );

        let a = describe_instances(&w, &params(&[("InstanceId.1", "web-1")]), "r");
        assert_eq!(a.detail, "InvalidInstanceID.Malformed");

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
    fn paginate_edges() {
        let items = [1, 2, 3];
        assert_eq!(
            paginate(&items, "k", 2, None).unwrap(),
            (vec![1, 2], Some("k.page.2".into()))
        );
        assert_eq!(
            paginate(&items, "k", 2, Some("k.page.2")).unwrap(),
            (vec![3], None)
        );
        assert!(paginate(&items, "k", 2, Some("other.page.2")).is_err());
        assert!(paginate(&items, "k", 2, Some("k.page.9")).is_err());
        let empty: [u8; 0] = [];
        assert_eq!(paginate(&empty, "k", 2, None).unwrap(), (vec![], None));
    }

    #[test]
    fn key_and_user_validation() {
        assert!(valid_os_user("ec2-user"));
        assert!(valid_os_user("root"));
        assert!(valid_os_user("a"));
        assert!(!valid_os_user("1abc"));
        assert!(!valid_os_user("bad user"));
        assert!(!valid_os_user(""));
        let ed =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test";
        assert!(validate_public_key(ed).is_ok());
        assert!(validate_public_key("ssh-ed25519 AAAA").is_err());
        assert!(validate_public_key(&format!("{ed}\n{ed}")).is_err());
    }

    #[test]
    fn security_group_rules_page_and_filter() {
        let w = World::demo();
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut p = params(&[
                ("Filter.1.Name", "group-id"),
                ("Filter.1.Value.1", super::super::DEMO_ENDPOINT_SG),
                ("Filter.1.Value.2", super::super::DEMO_INSTANCE_SG),
            ]);
            if let Some(t) = &token {
                p.push(("NextToken".into(), t.clone()));
            }
            let a = describe_security_group_rules(&w, &p, "rid");
            assert_eq!(a.status, 200, "{}", a.body);
            seen.extend(
                a.body
                    .split("<securityGroupRuleId>")
                    .skip(1)
                    .filter_map(|s| s.split('<').next())
                    .map(str::to_string),
            );
            token = token_in(&a.body);
            if token.is_none() {
                break;
            }
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
        let a = describe_security_group_rules(&w, &params(&[("MaxResults", "1000")]), "rid");
        assert!(a.body.contains("<isEgress>true</isEgress>"));
        assert!(a.body.contains(&format!(
            "<referencedGroupInfo><groupId>{}</groupId>",
            super::super::DEMO_INSTANCE_SG
        )));
        let a = describe_security_group_rules(&w, &params(&[("Filter.1.Name", "x")]), "rid");
        assert_eq!(a.detail, "InvalidParameterValue");
    }

    #[test]
    fn instances_list_every_interface_and_its_groups() {
        let mut w = World::demo();
        w.instances[0]
            .network_interfaces
            .push(super::super::NetworkInterface {
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
        let missing = describe_vpcs(&w, &params(&[("VpcId.1", "vpc-9")]), "r");
        assert_eq!(missing.detail, "InvalidVpcID.NotFound");
    }

    #[test]
    fn xml_escaping() {
        assert_eq!(esc("a<b>&'\""), "a&lt;b&gt;&amp;'\"");
    }
}
