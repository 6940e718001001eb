//! `eic-ssh doctor`: walk the path to an instance, explain what stops a
//! connection, and check that an IP restriction through Preserve Client IP
//! really holds.
//!
//! The checks ([`evaluate`]) are pure functions over [`Facts`], plain data
//! fetched once by a thin layer ([`gather`]): `DescribeInstances`,
//! `DescribeInstanceConnectEndpoints`, `DescribeSecurityGroupRules` (all
//! pages, for every group on the endpoint and on every network interface of
//! the instance), `DescribeSubnets` and `DescribeVpcs`. Only `--connect`
//! goes further and tries a real connection.
//!
//! The rules are judged the way AWS evaluates them: the union of all the
//! instance's groups; with Preserve Client IP on, the instance sees the
//! client's own address, with it off the endpoint's; a rule that references
//! the endpoint's security group matches in both modes, and so admits every
//! client.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use ipnet::Ipv4Net;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::aws::Aws;
use crate::cli::DoctorArgs;
use crate::error::Error;
use crate::lookup::{self, EndpointInfo, InstanceInfo};

/// Where this machine's public address is discovered unless `--offline`
/// or `--client-ip`; `EIC_SSH_CHECKIP_URL` overrides it.
pub const CHECKIP_URL: &str = "https://checkip.amazonaws.com/";

/// How long address discovery may take before it is given up (a warning).
const CHECKIP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `--connect` waits for the server's SSH banner through the tunnel.
const BANNER_TIMEOUT: Duration = Duration::from_secs(30);

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// 1 to 8, in the order the path is walked.
    pub id: u8,
    /// A short stable name, e.g. `instance-ingress`.
    pub name: &'static str,
    pub status: Status,
    /// One sentence (or a few) saying what was found.
    pub message: String,
    /// The `aws` CLI command(s) that fix a failure, one per line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Supporting facts: rules, alternatives.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl Check {
    fn new(id: u8, name: &'static str, status: Status, message: impl Into<String>) -> Check {
        Check {
            id,
            name,
            status,
            message: message.into(),
            fix: None,
            details: Vec::new(),
        }
    }

    fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }

    fn details(mut self, details: Vec<String>) -> Check {
        self.details = details;
        self
    }
}

/// The other side of a security group rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    Cidr(Ipv4Net),
    CidrV6(String),
    Group(String),
    PrefixList(String),
    Unknown,
}

/// A security group rule, as `DescribeSecurityGroupRules` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `sgr-…`.
    pub id: String,
    /// The group the rule belongs to.
    pub group_id: String,
    pub egress: bool,
    /// `tcp`, `udp`, `icmp`, `-1` (all traffic), or a protocol number.
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub peer: Peer,
}

impl Rule {
    /// Whether the rule covers TCP to `port`: protocol `-1` covers every
    /// port; `tcp` (or 6) covers its range.
    pub fn covers_tcp(&self, port: u16) -> bool {
        match self.protocol.as_str() {
            "-1" | "all" => true,
            "tcp" | "6" => (self.from_port..=self.to_port).contains(&i32::from(port)),
            _ => false,
        }
    }

    fn peer_text(&self) -> String {
        match &self.peer {
            Peer::Cidr(n) => n.to_string(),
            Peer::CidrV6(c) => c.clone(),
            Peer::Group(g) => format!("security group {g}"),
            Peer::PrefixList(p) => format!("prefix list {p}"),
            Peer::Unknown => "an unknown peer".into(),
        }
    }

    fn text(&self) -> String {
        let what = if self.protocol == "-1" {
            "all traffic".to_owned()
        } else if self.from_port == self.to_port {
            format!("{}/{}", self.protocol, self.from_port)
        } else {
            format!("{}/{}-{}", self.protocol, self.from_port, self.to_port)
        };
        let dir = if self.egress { "to" } else { "from" };
        format!(
            "{} in {}: {what} {dir} {}",
            self.id,
            self.group_id,
            self.peer_text()
        )
    }
}

/// Parse a rule's IPv4 CIDR, normalised to its network (AWS does the same).
pub fn parse_cidr(s: &str) -> Result<Ipv4Net, String> {
    let net = if s.contains('/') {
        s.parse::<Ipv4Net>().map_err(|e| e.to_string())?
    } else {
        Ipv4Net::from(s.parse::<Ipv4Addr>().map_err(|e| e.to_string())?)
    };
    Ok(net.trunc())
}

/// The rules of `groups`, combined: AWS allows what any of them allows.
pub fn rules_of<'a>(rules: &'a [Rule], groups: &'a [String]) -> impl Iterator<Item = &'a Rule> {
    rules.iter().filter(move |r| groups.contains(&r.group_id))
}

/// This machine's public address, as far as it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAddr {
    Given(Ipv4Addr),
    Discovered(Ipv4Addr),
    /// Discovery failed, and why.
    Failed(String),
    /// `--offline` without `--client-ip`.
    Offline,
}

impl ClientAddr {
    fn ip(&self) -> Option<Ipv4Addr> {
        match self {
            ClientAddr::Given(ip) | ClientAddr::Discovered(ip) => Some(*ip),
            _ => None,
        }
    }
}

/// Everything the checks look at, fetched once.
#[derive(Debug, Clone)]
pub struct Facts {
    pub instance_id: String,
    pub port: u16,
    pub use_fips: bool,
    /// `--expect-cidr`: the only client networks that should get in.
    pub expect: Vec<Ipv4Net>,
    pub client: ClientAddr,
    /// `DescribeInstances`, or why it failed.
    pub instance: Result<InstanceInfo, String>,
    /// `--eice-id`, when the user named the endpoint.
    pub eice_id: Option<String>,
    /// The usable endpoints considered, in API order, or why the lookup failed.
    pub endpoints: Result<Vec<EndpointInfo>, String>,
    /// The rules of the endpoint's and the instance's groups, or why not.
    pub rules: Result<Vec<Rule>, String>,
    /// The CIDR of the chosen endpoint's subnet, when known.
    pub endpoint_subnet_cidr: Option<Ipv4Net>,
    /// The instance VPC's IPv4 CIDRs, when known.
    pub vpc_cidrs: Vec<Ipv4Net>,
    /// Appended to every `aws` command in a fix: ` --region R [--profile P]`.
    pub aws_args: String,
}

impl Facts {
    /// The endpoint eic-ssh would use, and why.
    pub fn chosen_endpoint(&self) -> Option<(&EndpointInfo, &'static str)> {
        let endpoints = self.endpoints.as_ref().ok()?;
        if let Some(id) = &self.eice_id {
            return endpoints
                .iter()
                .find(|e| &e.id == id)
                .map(|e| (e, "named by --eice-id"));
        }
        let subnet = self.instance.as_ref().ok()?.subnet_id.as_deref();
        let chosen = lookup::choose_endpoint(endpoints, subnet)?;
        let why = if subnet.is_some() && chosen.subnet_id.as_deref() == subnet {
            "in the instance's own subnet"
        } else {
            "the first usable one in the VPC (none is in the instance's subnet)"
        };
        Some((chosen, why))
    }
}

/// Run checks 1 to 7 over the facts.
pub fn evaluate(f: &Facts) -> Vec<Check> {
    let mut checks = vec![check_instance(f)];
    let endpoint = check_endpoint(f);
    checks.push(endpoint);
    let (Ok(instance), Some((ep, _))) = (&f.instance, f.chosen_endpoint()) else {
        let why = if f.instance.is_err() {
            "the instance could not be looked up"
        } else {
            "there is no usable endpoint"
        };
        for (id, name) in CHECK_NAMES.iter().skip(2).take(5) {
            checks.push(Check::new(
                *id,
                name,
                Status::Skip,
                format!("Skipped: {why}."),
            ));
        }
        return checks;
    };
    match &f.rules {
        Ok(rules) => {
            let path = PathFacts {
                f,
                instance,
                ep,
                rules,
            };
            checks.push(path.endpoint_egress());
            checks.push(path.endpoint_ingress());
            checks.push(path.instance_ingress());
            checks.push(path.client_address());
        }
        Err(e) => {
            for (id, name) in CHECK_NAMES.iter().skip(2).take(4) {
                checks.push(
                    Check::new(
                        *id,
                        name,
                        Status::Fail,
                        format!("Could not read the security group rules: {e}."),
                    )
                    .fix("grant ec2:DescribeSecurityGroupRules (and ec2:DescribeSubnets, ec2:DescribeVpcs) to the identity running eic-ssh doctor"),
                );
            }
        }
    }
    checks.push(check_address_type(f, ep));
    checks
}

const CHECK_NAMES: [(u8, &str); 8] = [
    (1, "instance"),
    (2, "endpoint"),
    (3, "endpoint-egress"),
    (4, "endpoint-ingress"),
    (5, "instance-ingress"),
    (6, "client-address"),
    (7, "ip-address-type"),
    (8, "connect"),
];

fn check_instance(f: &Facts) -> Check {
    let c = |status, msg: String| Check::new(1, "instance", status, msg);
    let i = match &f.instance {
        Ok(i) => i,
        Err(e) => return c(Status::Fail, format!("{e}.")),
    };
    let place = format!(
        "{} / {}",
        i.vpc_id.as_deref().unwrap_or("no VPC"),
        i.subnet_id.as_deref().unwrap_or("no subnet")
    );
    if i.state != "running" {
        return c(
            Status::Fail,
            format!(
                "{} is {}, not running: the endpoint can only reach a running instance.",
                i.id, i.state
            ),
        )
        .fix(format!(
            "aws ec2 start-instances --instance-ids {}{}",
            i.id, f.aws_args
        ));
    }
    match i.private_ip {
        Some(ip) => c(
            Status::Pass,
            format!("{} is running in {place} with private IP {ip}.", i.id),
        ),
        None => c(
            Status::Fail,
            format!(
                "{} has no private IPv4 address: endpoints reach instances by private IPv4 only.",
                i.id
            ),
        ),
    }
}

fn check_endpoint(f: &Facts) -> Check {
    let c = |status, msg: String| Check::new(2, "endpoint", status, msg);
    let Ok(instance) = &f.instance else {
        return c(
            Status::Skip,
            "Skipped: the instance could not be looked up.".into(),
        );
    };
    let vpc = instance.vpc_id.as_deref().unwrap_or("its VPC");
    let endpoints = match &f.endpoints {
        Ok(e) => e,
        Err(e) => return c(Status::Fail, format!("Could not list endpoints: {e}.")),
    };
    let Some((ep, why)) = f.chosen_endpoint() else {
        let subnet = instance.subnet_id.as_deref().unwrap_or("<subnet-id>");
        let msg = match &f.eice_id {
            Some(id) => format!("Endpoint {id} was not found or is not usable."),
            None => format!(
                "No usable EC2 Instance Connect Endpoint in {vpc}: eic-ssh has nothing to tunnel through."
            ),
        };
        return c(Status::Fail, msg).fix(format!(
            "aws ec2 create-instance-connect-endpoint --subnet-id {subnet} --preserve-client-ip{}",
            f.aws_args
        ));
    };
    let pci = match ep.preserve_client_ip {
        Some(true) => "on",
        Some(false) => "off",
        None => "not reported (treated as off)",
    };
    let mut details = vec![
        format!("DNS name: {}", ep.dns_name.as_deref().unwrap_or("none")),
        format!("Preserve Client IP: {pci}"),
        format!("security groups: {}", ep.security_group_ids.join(", ")),
    ];
    if endpoints.len() > 1 {
        details.push(format!("{} usable endpoints in {vpc}", endpoints.len()));
    }
    let mut msg = format!(
        "eic-ssh would use {} ({}) in {}, {why}.",
        ep.id,
        ep.state,
        ep.subnet_id.as_deref().unwrap_or("an unknown subnet")
    );
    if f.use_fips {
        match &ep.fips_dns_name {
            Some(name) => msg.push_str(&format!(" FIPS is configured: it dials {name}.")),
            None => {
                return c(
                    Status::Fail,
                    format!(
                        "{msg} FIPS is configured, but {} has no FIPS DNS name.",
                        ep.id
                    ),
                )
                .fix("unset AWS_USE_FIPS_ENDPOINT (or use_fips_endpoint in the profile), or use a region whose endpoints have FIPS names")
                .details(details);
            }
        }
    }
    c(Status::Pass, msg).details(details)
}

fn check_address_type(f: &Facts, ep: &EndpointInfo) -> Check {
    let c = |status, msg: String| Check::new(7, "ip-address-type", status, msg);
    let kind = ep.ip_address_type.as_deref().unwrap_or("ipv4");
    let pci = ep.preserve_client_ip == Some(true);
    if kind == "ipv4" {
        return c(
            Status::Pass,
            format!(
                "{} is an ipv4 endpoint, so Preserve Client IP (IPv4 only) can work.",
                ep.id
            ),
        );
    }
    let subnet = ep.subnet_id.as_deref().unwrap_or("<subnet-id>");
    let recreate = format!(
        "aws ec2 create-instance-connect-endpoint --subnet-id {subnet} --ip-address-type ipv4 --preserve-client-ip{}",
        f.aws_args
    );
    if pci || !f.expect.is_empty() {
        c(
            Status::Fail,
            format!(
                "{} is a {kind} endpoint, but Preserve Client IP works with IPv4 endpoints only, so the instance cannot see client addresses.",
                ep.id
            ),
        )
        .fix(recreate)
    } else {
        c(
            Status::Pass,
            format!(
                "{} is a {kind} endpoint; that is fine while Preserve Client IP (IPv4 only) stays off.",
                ep.id
            ),
        )
    }
}

/// What an inbound rule on the instance admits, for tunnels through the endpoint.
#[derive(Debug, Clone, Copy)]
enum Admits<'a> {
    /// It references the endpoint's security group: every client.
    EveryClient(&'a Rule),
    Cidr(&'a Rule, Ipv4Net),
    /// A prefix list: its entries are not checked.
    PrefixList(&'a Rule),
    /// Another group or IPv6: nothing that comes through the endpoint.
    Nothing(&'a Rule),
}

/// The inbound rules of all the instance's groups that cover the port,
/// classified by what they admit through `endpoint_groups`.
fn inbound<'a>(
    rules: &'a [Rule],
    instance_groups: &'a [String],
    endpoint_groups: &[String],
    port: u16,
) -> Vec<Admits<'a>> {
    rules_of(rules, instance_groups)
        .filter(|r| !r.egress && r.covers_tcp(port))
        .map(|r| match &r.peer {
            Peer::Group(g) if endpoint_groups.contains(g) => Admits::EveryClient(r),
            Peer::Cidr(n) => Admits::Cidr(r, *n),
            Peer::PrefixList(_) => Admits::PrefixList(r),
            _ => Admits::Nothing(r),
        })
        .collect()
}

/// Whether the instance's inbound rules admit `source`: `Some(rule)` that
/// does, else `None`. A rule naming the endpoint's group admits everyone.
pub fn admitting_rule<'a>(
    rules: &'a [Rule],
    instance_groups: &'a [String],
    endpoint_groups: &[String],
    port: u16,
    source: Ipv4Addr,
) -> Option<&'a Rule> {
    inbound(rules, instance_groups, endpoint_groups, port)
        .into_iter()
        .find_map(|a| match a {
            Admits::EveryClient(r) => Some(r),
            Admits::Cidr(r, n) if n.contains(&source) => Some(r),
            _ => None,
        })
}

/// Why a CIDR rule allows more than the expected networks, if it does.
pub fn wider_than_expected(net: Ipv4Net, expect: &[Ipv4Net], vpc: &[Ipv4Net]) -> Option<String> {
    if expect.iter().any(|e| e.contains(&net)) {
        return None;
    }
    let exp = join(expect.iter().map(ToString::to_string));
    Some(if net.prefix_len() == 0 {
        "allows every address".to_owned()
    } else if let Some(v) = vpc.iter().find(|v| v.contains(&net) || net.contains(*v)) {
        format!(
            "covers addresses of the VPC ({v}): every client whose address falls there gets in, e.g. over a VPN, Direct Connect or peering"
        )
    } else {
        format!("is not inside {exp}")
    })
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// The checks that need both the instance and the endpoint.
struct PathFacts<'a> {
    f: &'a Facts,
    instance: &'a InstanceInfo,
    ep: &'a EndpointInfo,
    rules: &'a [Rule],
}

impl PathFacts<'_> {
    fn port(&self) -> u16 {
        self.f.port
    }

    fn pci(&self) -> bool {
        self.ep.preserve_client_ip == Some(true)
    }

    fn first_instance_group(&self) -> &str {
        self.instance
            .security_group_ids
            .first()
            .map_or("<instance-sg>", String::as_str)
    }

    fn first_endpoint_group(&self) -> &str {
        self.ep
            .security_group_ids
            .first()
            .map_or("<endpoint-sg>", String::as_str)
    }

    fn endpoint_on(&self) -> String {
        format!(
            "aws ec2 modify-instance-connect-endpoint --instance-connect-endpoint-id {} --preserve-client-ip{}",
            self.ep.id, self.f.aws_args
        )
    }

    fn iam_alternative(&self) -> String {
        format!(
            "or restrict by IAM instead: a Deny on ec2-instance-connect:OpenTunnel for arn:aws:ec2:*:*:instance-connect-endpoint/{} with a NotIpAddress condition on aws:SourceIp",
            self.ep.id
        )
    }

    fn endpoint_egress(&self) -> Check {
        let port = self.port();
        let c = |status, msg: String| Check::new(3, "endpoint-egress", status, msg);
        let out: Vec<&Rule> = rules_of(self.rules, &self.ep.security_group_ids)
            .filter(|r| r.egress && r.covers_tcp(port))
            .collect();
        let ip = self.instance.private_ip;
        let reaches = out.iter().find(|r| match &r.peer {
            Peer::Group(g) => self.instance.security_group_ids.contains(g),
            Peer::Cidr(n) => ip.is_some_and(|ip| n.contains(&ip)),
            _ => false,
        });
        if let Some(r) = reaches {
            return c(
                Status::Pass,
                format!(
                    "The endpoint may open tcp/{port} to {}: {} allows {}.",
                    self.instance.id,
                    r.id,
                    r.peer_text()
                ),
            );
        }
        let details: Vec<String> = out.iter().map(|r| r.text()).collect();
        if let Some(r) = out.iter().find(|r| matches!(r.peer, Peer::PrefixList(_))) {
            return c(
                Status::Warn,
                format!(
                    "Outbound tcp/{port} from the endpoint is allowed only to {} ({}), whose entries were not checked against {}.",
                    r.peer_text(),
                    r.id,
                    ip.map_or_else(|| "the instance".to_owned(), |ip| ip.to_string())
                ),
            )
            .details(details);
        }
        c(
            Status::Fail,
            format!(
                "The endpoint's security groups ({}) allow no outbound tcp/{port} to {} (its groups {} or its address {}): every tunnel will time out.",
                self.ep.security_group_ids.join(", "),
                self.instance.id,
                self.instance.security_group_ids.join(", "),
                ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
            ),
        )
        .fix(format!(
            "aws ec2 authorize-security-group-egress --group-id {} --ip-permissions 'IpProtocol=tcp,FromPort={port},ToPort={port},UserIdGroupPairs=[{{GroupId={}}}]'{}",
            self.first_endpoint_group(),
            self.first_instance_group(),
            self.f.aws_args
        ))
        .details(details)
    }

    fn endpoint_ingress(&self) -> Check {
        let c = |status, msg: String| Check::new(4, "endpoint-ingress", status, msg);
        let inbound: Vec<&Rule> = rules_of(self.rules, &self.ep.security_group_ids)
            .filter(|r| !r.egress)
            .collect();
        if inbound.is_empty() {
            return c(
                Status::Pass,
                "The endpoint's security groups have no inbound rules, and need none.".into(),
            );
        }
        let shared: Vec<&String> = self
            .ep
            .security_group_ids
            .iter()
            .filter(|g| self.instance.security_group_ids.contains(g))
            .collect();
        let mut details: Vec<String> = inbound.iter().map(|r| r.text()).collect();
        if !shared.is_empty() {
            details.push(format!(
                "{} is also on the instance, where its inbound rules do apply",
                join(shared.iter().map(|g| g.to_string()))
            ));
        }
        c(
            Status::Warn,
            format!(
                "The endpoint's security groups have {} inbound rule(s) ({}): they restrict nothing, because clients reach the endpoint through the service's API, not its network interface.",
                inbound.len(),
                join(inbound.iter().map(|r| r.id.clone()))
            ),
        )
        .details(details)
    }

    fn instance_ingress(&self) -> Check {
        let port = self.port();
        let admits = inbound(
            self.rules,
            &self.instance.security_group_ids,
            &self.ep.security_group_ids,
            port,
        );
        let mut details: Vec<String> = vec![format!(
            "combined groups of {}: {}",
            self.instance.id,
            self.instance.security_group_ids.join(", ")
        )];
        let subnet = self.f.endpoint_subnet_cidr;
        details.extend(admits.iter().map(|a| match a {
            Admits::EveryClient(r) => format!("{} (the endpoint's group: every client)", r.text()),
            Admits::Cidr(r, n) if !self.pci() && !subnet.is_some_and(|s| n.contains(&s)) => {
                format!("{} (never matches with Preserve Client IP off)", r.text())
            }
            Admits::Cidr(r, _) | Admits::PrefixList(r) => r.text(),
            Admits::Nothing(r) => format!(
                "{} (matches nothing that comes through the endpoint)",
                r.text()
            ),
        }));
        if self.pci() {
            self.ingress_preserved(port, &admits, details)
        } else {
            self.ingress_not_preserved(port, &admits, details)
        }
    }

    /// Preserve Client IP off: the instance sees the endpoint's address.
    fn ingress_not_preserved(
        &self,
        port: u16,
        admits: &[Admits],
        mut details: Vec<String>,
    ) -> Check {
        let c = |status, msg: String| Check::new(5, "instance-ingress", status, msg);
        let subnet = self.f.endpoint_subnet_cidr;
        let where_ = match subnet {
            Some(n) => format!("an address in the endpoint's subnet {n}"),
            None => "the endpoint's address".to_owned(),
        };
        let admitting = admits.iter().find_map(|a| match a {
            Admits::EveryClient(r) => Some(*r),
            Admits::Cidr(r, n) if subnet.is_some_and(|s| n.contains(&s)) => Some(*r),
            _ => None,
        });
        let partial = admits.iter().find_map(|a| match a {
            Admits::Cidr(r, n) if subnet.is_some_and(|s| s.contains(n)) => Some(*r),
            _ => None,
        });
        let ways_out = vec![
            format!("turn Preserve Client IP on: {}", self.endpoint_on()),
            self.iam_alternative(),
        ];
        if let Some(r) = admitting {
            let head = format!(
                "Preserve Client IP is off, so the instance sees {where_}, which {} allows: every client allowed to open a tunnel gets in, and security groups cannot restrict by client IP in this mode.",
                r.id
            );
            details.extend(ways_out);
            if !self.f.expect.is_empty() {
                return c(
                    Status::Fail,
                    format!(
                        "{head} The restriction to {} does not hold.",
                        join(self.f.expect.iter().map(ToString::to_string))
                    ),
                )
                .fix(self.endpoint_on())
                .details(details);
            }
            return c(Status::Pass, head).details(details);
        }
        if let Some(r) = partial {
            return c(
                Status::Warn,
                format!(
                    "Preserve Client IP is off, so the instance sees {where_}; {} allows only part of that subnet ({}), which may miss the endpoint's address.",
                    r.id,
                    r.peer_text()
                ),
            )
            .details(details);
        }
        let client_rules: Vec<String> = admits
            .iter()
            .filter_map(|a| match a {
                Admits::Cidr(r, n) => Some(format!("{} ({n})", r.id)),
                _ => None,
            })
            .collect();
        let mut msg = format!(
            "Preserve Client IP is off, so the instance sees {where_}, and no inbound tcp/{port} rule allows it: every tunnel will time out."
        );
        let allow_endpoint = format!(
            "aws ec2 authorize-security-group-ingress --group-id {} --protocol tcp --port {port} --source-group {}{}",
            self.first_instance_group(),
            self.first_endpoint_group(),
            self.f.aws_args
        );
        let fix = if client_rules.is_empty() {
            allow_endpoint
        } else {
            msg.push_str(&format!(
                " The client CIDR rule(s) {} never match in this mode: to restrict by client IP, turn Preserve Client IP on.",
                client_rules.join(", ")
            ));
            details.push(self.iam_alternative());
            self.endpoint_on()
        };
        c(Status::Fail, msg).fix(fix).details(details)
    }

    /// Preserve Client IP on: the instance sees the client's own address.
    fn ingress_preserved(&self, port: u16, admits: &[Admits], details: Vec<String>) -> Check {
        let c = |status, msg: String| Check::new(5, "instance-ingress", status, msg);
        let allowed: Vec<String> = admits
            .iter()
            .filter_map(|a| match a {
                Admits::EveryClient(r) => Some(format!("every client ({})", r.id)),
                Admits::Cidr(r, n) => Some(format!("{n} ({})", r.id)),
                Admits::PrefixList(r) => Some(format!("{} ({})", r.peer_text(), r.id)),
                Admits::Nothing(_) => None,
            })
            .collect();
        if allowed.is_empty() {
            let cidr = self
                .f
                .expect
                .first()
                .map(ToString::to_string)
                .or_else(|| self.f.client.ip().map(|ip| format!("{ip}/32")))
                .unwrap_or_else(|| "<client-cidr>".to_owned());
            return c(
                Status::Fail,
                format!(
                    "Preserve Client IP is on, and no inbound tcp/{port} rule on {} allows any client: every tunnel will time out.",
                    self.instance.security_group_ids.join(", ")
                ),
            )
            .fix(format!(
                "aws ec2 authorize-security-group-ingress --group-id {} --protocol tcp --port {port} --cidr {cidr}{}",
                self.first_instance_group(),
                self.f.aws_args
            ))
            .details(details);
        }
        let head = format!(
            "Preserve Client IP is on; the instance admits tcp/{port} from {}.",
            allowed.join(", ")
        );
        if self.f.expect.is_empty() {
            return c(Status::Pass, head).details(details);
        }
        let expect = join(self.f.expect.iter().map(ToString::to_string));
        let offending: Vec<(&Rule, String)> = admits
            .iter()
            .filter_map(|a| match a {
                Admits::EveryClient(r) => Some((
                    *r,
                    format!(
                        "allows the endpoint's security group {}, which AWS matches for every client in both modes",
                        r.peer_text().trim_start_matches("security group ")
                    ),
                )),
                Admits::Cidr(r, n) => wider_than_expected(*n, &self.f.expect, &self.f.vpc_cidrs)
                    .map(|why| (*r, format!("{n} {why}"))),
                _ => None,
            })
            .collect();
        if !offending.is_empty() {
            let named = offending
                .iter()
                .map(|(r, why)| format!("{} {why}", r.id))
                .collect::<Vec<_>>()
                .join("; ");
            let fix = offending
                .iter()
                .map(|(r, _)| {
                    format!(
                        "aws ec2 revoke-security-group-ingress --group-id {} --security-group-rule-ids {}{}",
                        r.group_id, r.id, self.f.aws_args
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            return c(
                Status::Fail,
                format!(
                    "{head} The restriction to {expect} is defeated by {} rule(s): {named}.",
                    offending.len()
                ),
            )
            .fix(fix)
            .details(details);
        }
        if let Some(Admits::PrefixList(r)) =
            admits.iter().find(|a| matches!(a, Admits::PrefixList(_)))
        {
            return c(
                Status::Warn,
                format!(
                    "{head} {} allows {}, whose entries were not checked against {expect}.",
                    r.id,
                    r.peer_text()
                ),
            )
            .details(details);
        }
        c(
            Status::Pass,
            format!("{head} Every allowed client source is inside {expect}."),
        )
        .details(details)
    }

    fn client_address(&self) -> Check {
        let port = self.port();
        let c = |status, msg: String| Check::new(6, "client-address", status, msg);
        if !self.pci() {
            return c(
                Status::Skip,
                "Preserve Client IP is off: the instance sees the endpoint's address, not this machine's (check 5 decides).".into(),
            );
        }
        let (ip, how) = match &self.f.client {
            ClientAddr::Given(ip) => (*ip, "given"),
            ClientAddr::Discovered(ip) => (*ip, "discovered"),
            ClientAddr::Offline => {
                return c(
                    Status::Skip,
                    "Offline: pass --client-ip to check this machine's public address.".into(),
                );
            }
            ClientAddr::Failed(why) => {
                return c(
                    Status::Warn,
                    format!(
                        "Could not discover this machine's public address ({why}); pass --client-ip to check it."
                    ),
                );
            }
        };
        let admits = inbound(
            self.rules,
            &self.instance.security_group_ids,
            &self.ep.security_group_ids,
            port,
        );
        if let Some(r) = admitting_rule(
            self.rules,
            &self.instance.security_group_ids,
            &self.ep.security_group_ids,
            port,
            ip,
        ) {
            return c(
                Status::Pass,
                format!(
                    "This machine ({ip}, {how}) is allowed: {} allows {}.",
                    r.id,
                    r.peer_text()
                ),
            );
        }
        if let Some(Admits::PrefixList(r)) =
            admits.iter().find(|a| matches!(a, Admits::PrefixList(_)))
        {
            return c(
                Status::Warn,
                format!(
                    "This machine ({ip}, {how}) is allowed only if {} ({}) contains it; its entries were not checked.",
                    r.peer_text(),
                    r.id
                ),
            );
        }
        let allowed = join(admits.iter().filter_map(|a| match a {
            Admits::Cidr(_, n) => Some(n.to_string()),
            _ => None,
        }));
        let allowed = if allowed.is_empty() {
            "nothing".to_owned()
        } else {
            allowed
        };
        let msg = format!(
            "This machine ({ip}, {how}) will be refused: with Preserve Client IP on the instance sees that address, and its inbound tcp/{port} rules allow only {allowed}. The tunnel opens, then closes when the connection to the instance times out."
        );
        let outside_expected =
            !self.f.expect.is_empty() && !self.f.expect.iter().any(|n| n.contains(&ip));
        let fix = if outside_expected {
            format!(
                "connect from a network inside {} (this machine is outside the intended restriction; widening the rule would defeat it)",
                join(self.f.expect.iter().map(ToString::to_string))
            )
        } else {
            format!(
                "aws ec2 authorize-security-group-ingress --group-id {} --protocol tcp --port {port} --cidr {ip}/32{}",
                self.first_instance_group(),
                self.f.aws_args
            )
        };
        c(Status::Fail, msg).fix(fix)
    }
}

// ---------------------------------------------------------------------------
// Fetch layer

/// `eic-ssh doctor`: gather, check, print; 0 when nothing failed, else 1.
pub async fn run(args: DoctorArgs) -> Result<u8, Error> {
    let aws = Aws::load(args.region.as_deref(), args.profile.as_deref()).await?;
    let facts = gather(&aws, &args).await;
    let mut checks = evaluate(&facts);
    checks.push(if args.connect {
        connect_check(&aws, &facts, &args).await
    } else {
        Check::new(
            8,
            "connect",
            Status::Skip,
            "Pass --connect to try a real connection.",
        )
    });
    if args.json {
        let text = serde_json::to_string_pretty(&checks)
            .map_err(|e| Error::Config(format!("cannot write JSON: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", render(&facts, &checks));
    }
    Ok(exit_status(&checks))
}

/// 1 when any check failed, else 0 (warnings pass).
pub fn exit_status(checks: &[Check]) -> u8 {
    u8::from(checks.iter().any(|c| c.status == Status::Fail))
}

/// The human checklist.
pub fn render(f: &Facts, checks: &[Check]) -> String {
    let mut out = format!(
        "eic-ssh doctor: {} port {}{}\n\n",
        f.instance_id,
        f.port,
        if f.expect.is_empty() {
            String::new()
        } else {
            format!(
                ", expecting only {}",
                join(f.expect.iter().map(ToString::to_string))
            )
        }
    );
    for c in checks {
        out.push_str(&format!(
            "{} {}. {:<17} {}\n",
            c.status.label(),
            c.id,
            c.name,
            c.message
        ));
        if let Some(fix) = &c.fix {
            for (i, line) in fix.lines().enumerate() {
                let lead = if i == 0 { "fix:" } else { " or:" };
                out.push_str(&format!("        {lead} {line}\n"));
            }
        }
        for d in &c.details {
            out.push_str(&format!("        - {d}\n"));
        }
    }
    let count = |s| checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "\n{} passed, {} failed, {} warning(s), {} skipped.\n",
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Warn),
        count(Status::Skip)
    ));
    out
}

/// Fetch everything the checks need, concurrently where possible. Failures
/// become part of the facts: doctor reports them, it does not stop.
pub async fn gather(aws: &Aws, args: &DoctorArgs) -> Facts {
    let instance_id = args.target.instance_id.clone();
    let mut aws_args = format!(" --region {}", aws.region);
    if let Some(p) = &aws.profile {
        aws_args.push_str(&format!(" --profile {p}"));
    }
    let client = async {
        match (args.client_ip, args.offline) {
            (Some(ip), _) => ClientAddr::Given(ip),
            (None, true) => ClientAddr::Offline,
            (None, false) => {
                let url = std::env::var("EIC_SSH_CHECKIP_URL")
                    .ok()
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| CHECKIP_URL.to_owned());
                match tokio::time::timeout(CHECKIP_TIMEOUT, discover_ip(&url, aws.tls.clone()))
                    .await
                {
                    Ok(Ok(ip)) => ClientAddr::Discovered(ip),
                    Ok(Err(e)) => ClientAddr::Failed(format!("{url}: {e}")),
                    Err(_) => ClientAddr::Failed(format!("{url}: timed out")),
                }
            }
        }
    };
    let path = async {
        let instance = lookup::describe_instance(aws.ec2(), &instance_id, &aws.region)
            .await
            .map_err(|e| e.to_string());
        let endpoints = match (&instance, &args.eice_id) {
            (_, Some(id)) => lookup::endpoint_by_id(aws.ec2(), id)
                .await
                .map(|e| vec![e])
                .or_else(|e| match e {
                    Error::EndpointNotFound { .. } => Ok(Vec::new()),
                    other => Err(other.to_string()),
                }),
            (Ok(i), None) => match &i.vpc_id {
                Some(vpc) => lookup::endpoints_in_vpc(aws.ec2(), vpc)
                    .await
                    .map_err(|e| e.to_string()),
                None => Ok(Vec::new()),
            },
            (Err(_), None) => Ok(Vec::new()),
        };
        (instance, endpoints)
    };
    let (client, (instance, endpoints)) = tokio::join!(client, path);
    let mut facts = Facts {
        instance_id,
        port: args.port,
        use_fips: aws.use_fips,
        expect: args.expect_cidr.clone(),
        client,
        instance,
        eice_id: args.eice_id.clone(),
        endpoints,
        rules: Ok(Vec::new()),
        endpoint_subnet_cidr: None,
        vpc_cidrs: Vec::new(),
        aws_args,
    };
    let Some((ep, _)) = facts.chosen_endpoint() else {
        return facts;
    };
    let mut groups = ep.security_group_ids.clone();
    let ep_subnet = ep.subnet_id.clone();
    let vpc = facts.instance.as_ref().ok().and_then(|i| i.vpc_id.clone());
    if let Ok(i) = &facts.instance {
        for g in &i.security_group_ids {
            if !groups.contains(g) {
                groups.push(g.clone());
            }
        }
    }
    let (rules, subnet, vpc_cidrs) = tokio::join!(
        security_group_rules(aws.ec2(), &groups),
        subnet_cidr(aws.ec2(), ep_subnet.as_deref()),
        vpc_cidrs(aws.ec2(), vpc.as_deref()),
    );
    facts.rules = rules.map_err(|e| e.to_string());
    facts.endpoint_subnet_cidr = subnet;
    facts.vpc_cidrs = vpc_cidrs;
    facts
}

/// Every rule of `groups`, across all pages of `DescribeSecurityGroupRules`.
pub async fn security_group_rules(
    ec2: &aws_sdk_ec2::Client,
    groups: &[String],
) -> Result<Vec<Rule>, Error> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let mut pages = ec2
        .describe_security_group_rules()
        .filters(
            Filter::builder()
                .name("group-id")
                .set_values(Some(groups.to_vec()))
                .build(),
        )
        .into_paginator()
        .send();
    let mut rules = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| lookup::api_error("DescribeSecurityGroupRules", e))?;
        for r in page.security_group_rules() {
            let peer = if let Some(c) = r.cidr_ipv4() {
                parse_cidr(c).map_or(Peer::Unknown, Peer::Cidr)
            } else if let Some(c) = r.cidr_ipv6() {
                Peer::CidrV6(c.to_owned())
            } else if let Some(p) = r.prefix_list_id() {
                Peer::PrefixList(p.to_owned())
            } else if let Some(g) = r.referenced_group_info().and_then(|g| g.group_id()) {
                Peer::Group(g.to_owned())
            } else {
                Peer::Unknown
            };
            rules.push(Rule {
                id: r.security_group_rule_id().unwrap_or_default().to_owned(),
                group_id: r.group_id().unwrap_or_default().to_owned(),
                egress: r.is_egress().unwrap_or(false),
                protocol: r.ip_protocol().unwrap_or("-1").to_owned(),
                from_port: r.from_port().unwrap_or(-1),
                to_port: r.to_port().unwrap_or(-1),
                peer,
            });
        }
    }
    Ok(rules)
}

/// The subnet's IPv4 CIDR; `None` when unknown (the checks then say so).
async fn subnet_cidr(ec2: &aws_sdk_ec2::Client, subnet: Option<&str>) -> Option<Ipv4Net> {
    let out = ec2
        .describe_subnets()
        .subnet_ids(subnet?)
        .send()
        .await
        .inspect_err(|e| tracing::info!("DescribeSubnets: {}", crate::error::chain(e)))
        .ok()?;
    let cidr = out.subnets().first()?.cidr_block()?;
    parse_cidr(cidr).ok()
}

/// The VPC's IPv4 CIDRs; empty when unknown.
async fn vpc_cidrs(ec2: &aws_sdk_ec2::Client, vpc: Option<&str>) -> Vec<Ipv4Net> {
    let Some(vpc) = vpc else {
        return Vec::new();
    };
    let out = match ec2.describe_vpcs().vpc_ids(vpc).send().await {
        Ok(o) => o,
        Err(e) => {
            tracing::info!("DescribeVpcs: {}", crate::error::chain(&e));
            return Vec::new();
        }
    };
    let mut nets = Vec::new();
    for v in out.vpcs() {
        let cidrs = v.cidr_block().into_iter().chain(
            v.cidr_block_association_set()
                .iter()
                .filter_map(|a| a.cidr_block()),
        );
        for c in cidrs {
            if let Ok(n) = parse_cidr(c)
                && !nets.contains(&n)
            {
                nets.push(n);
            }
        }
    }
    nets
}

/// This machine's public IPv4 address, as a "what is my IP" service sees it
/// (a plain HTTPS GET answered with the address as text).
async fn discover_ip(url: &str, tls: Arc<rustls::ClientConfig>) -> Result<Ipv4Addr, String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    let host = parsed.host_str().ok_or("no host")?.to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: eic-ssh/{}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
        parsed.path(),
        env!("CARGO_PKG_VERSION")
    );
    let mut response = Vec::new();
    if parsed.scheme() == "https" {
        let name =
            rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let mut stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        read_limited(&mut stream, &mut response).await?;
    } else {
        let mut stream = tcp;
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        read_limited(&mut stream, &mut response).await?;
    }
    parse_checkip_response(&response)
}

async fn read_limited<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let mut buf = [0u8; 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) => return Ok(()),
            Ok(n) => {
                out.extend_from_slice(buf.get(..n).unwrap_or_default());
                if out.len() > 16 * 1024 {
                    return Err("the answer is too long".into());
                }
            }
            // Servers that close TLS without close_notify: keep what came.
            Err(e) if !out.is_empty() && e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(());
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The address in an HTTP answer: status 200, body the address (any line,
/// so chunked framing does not matter).
pub fn parse_checkip_response(response: &[u8]) -> Result<Ipv4Addr, String> {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("not an HTTP answer")?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("answered {status}"));
    }
    body.lines()
        .find_map(|l| l.trim().parse::<Ipv4Addr>().ok())
        .ok_or_else(|| "the answer holds no IPv4 address".to_owned())
}

/// Check 8: push a key, open the tunnel, read the SSH banner; time each step
/// and say where it failed.
async fn connect_check(aws: &Aws, f: &Facts, args: &DoctorArgs) -> Check {
    let c = |status, msg: String| Check::new(8, "connect", status, msg);
    let (Ok(instance), Some((ep, _))) = (&f.instance, f.chosen_endpoint()) else {
        return c(
            Status::Skip,
            "Skipped: there is no instance and endpoint to connect through.".into(),
        );
    };
    let Some(private_ip) = instance.private_ip.filter(|_| instance.state == "running") else {
        return c(
            Status::Skip,
            "Skipped: the instance is not running with a private IPv4.".into(),
        );
    };
    let dns_name = match ep.dial_name(aws.use_fips) {
        Ok(d) => d,
        Err(e) => return c(Status::Fail, format!("{e}.")),
    };
    let user = crate::cli::os_user(args.user.as_ref(), Some(&args.target));
    let mut timings = Vec::new();

    if args.port == 22 {
        let started = Instant::now();
        let pushed = async {
            let key = crate::keypush::EphemeralKey::generate()?;
            crate::keypush::send_public_key(aws.eic(), &instance.id, &user, &key.public_openssh)
                .await
        }
        .await;
        let took = started.elapsed();
        if let Err(e) = pushed {
            let mut check = c(
                Status::Fail,
                format!("The key push for {user} failed after {}: {e}.", ms(took)),
            );
            if let Some(h) = e.hint() {
                check = check.fix(h);
            }
            return check;
        }
        timings.push(format!("key push for {user}: {}", ms(took)));
    }

    let dest = crate::connect::Destination {
        instance_id: instance.id.clone(),
        port: args.port,
        eice_id: Some(ep.id.clone()),
        eice_dns: Some(dns_name.clone()),
        private_ip: Some(private_ip),
        max_tunnel_duration: None,
    };
    let route = crate::connect::Route {
        instance_id: instance.id.clone(),
        private_ip,
        vpc_id: instance.vpc_id.clone(),
        subnet_id: instance.subnet_id.clone(),
        endpoint_id: ep.id.clone(),
        dns_name,
    };
    let started = Instant::now();
    let tunnel = crate::connect::open_tunnel(aws, &dest, &route).await;
    let took = started.elapsed();
    let mut tunnel = match tunnel {
        Ok(t) => t,
        Err(e) => {
            let step = match &e {
                Error::TunnelRejected { .. } => "The tunnel handshake was refused",
                Error::TunnelConnect { .. } => "The endpoint could not be reached",
                _ => "The tunnel could not be opened",
            };
            let mut check =
                c(Status::Fail, format!("{step} after {}: {e}.", ms(took))).details(timings);
            if let Some(h) = e.hint() {
                check = check.fix(h);
            }
            return check;
        }
    };
    timings.push(format!("tunnel handshake: {}", ms(took)));
    let closed = tunnel.close_status();

    let started = Instant::now();
    let mut banner = Vec::new();
    let read = tokio::time::timeout(BANNER_TIMEOUT, async {
        let mut byte = [0u8; 1];
        while banner.len() < 255 && !banner.ends_with(b"\n") {
            match tunnel.read(&mut byte).await {
                Ok(0) => return Err("the tunnel ended".to_owned()),
                Ok(_) => banner.extend_from_slice(&byte),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    })
    .await;
    let took = started.elapsed();
    let banner_text = String::from_utf8_lossy(&banner).trim().to_owned();
    let outcome = match read {
        Ok(Ok(())) if banner_text.starts_with("SSH-") => {
            timings.push(format!("SSH banner: {}", ms(took)));
            c(
                Status::Pass,
                format!(
                    "Connected to {} port {} through {}: the server said {banner_text}.",
                    instance.id, args.port, ep.id
                ),
            )
        }
        Ok(Ok(())) => c(
            Status::Fail,
            format!(
                "The tunnel reached port {}, but the server did not speak SSH (it sent {banner_text:?}).",
                args.port
            ),
        ),
        Ok(Err(why)) => match closed.abnormal() {
            Some((code, reason)) => c(
                Status::Fail,
                format!(
                    "The tunnel opened, then the endpoint closed it after {} before SSH began (code {code}: {reason}): the endpoint could not connect TCP to {}:{}. See checks 3, 5 and 6.",
                    ms(took),
                    private_ip,
                    args.port
                ),
            ),
            None => c(
                Status::Fail,
                format!(
                    "The tunnel opened, then ended after {} before SSH began: {why}.",
                    ms(took)
                ),
            ),
        },
        Err(_) if args.port == 3389 => c(
            Status::Warn,
            format!(
                "The tunnel to port 3389 opened and stayed open for {}; RDP speaks first from the client, so eic-ssh cannot check further.",
                ms(took)
            ),
        ),
        Err(_) => c(
            Status::Fail,
            format!(
                "The tunnel opened, but no SSH banner came within {}.",
                ms(BANNER_TIMEOUT)
            ),
        ),
    };
    let _ = tunnel.shutdown().await;
    outcome.details(timings)
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        parse_cidr(s).unwrap_or_else(|e| unreachable!("{s}: {e}"))
    }

    fn rule(
        id: &str,
        group: &str,
        egress: bool,
        proto: &str,
        from: i32,
        to: i32,
        peer: Peer,
    ) -> Rule {
        Rule {
            id: id.into(),
            group_id: group.into(),
            egress,
            protocol: proto.into(),
            from_port: from,
            to_port: to,
            peer,
        }
    }

    fn tcp_in(id: &str, group: &str, port: i32, peer: Peer) -> Rule {
        rule(id, group, false, "tcp", port, port, peer)
    }

    #[test]
    fn cidrs_parse_and_normalise() {
        assert_eq!(net("10.0.1.7/24"), net("10.0.1.0/24"));
        assert_eq!(net("203.0.113.7"), net("203.0.113.7/32"));
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("nonsense").is_err());
        assert!(net("0.0.0.0/0").contains(&Ipv4Addr::new(198, 51, 100, 9)));
        assert!(net("203.0.113.0/24").contains(&net("203.0.113.128/25")));
        assert!(!net("203.0.113.128/25").contains(&net("203.0.113.0/24")));
        assert!(!net("203.0.113.0/24").contains(&Ipv4Addr::new(203, 0, 114, 0)));
    }

    #[test]
    fn port_ranges_and_protocols() {
        let p = Peer::Unknown;
        assert!(rule("r", "g", false, "tcp", 22, 22, p.clone()).covers_tcp(22));
        assert!(!rule("r", "g", false, "tcp", 22, 22, p.clone()).covers_tcp(3389));
        assert!(rule("r", "g", false, "tcp", 0, 65535, p.clone()).covers_tcp(3389));
        assert!(rule("r", "g", false, "tcp", 20, 23, p.clone()).covers_tcp(22));
        assert!(!rule("r", "g", false, "tcp", 23, 3388, p.clone()).covers_tcp(22));
        assert!(rule("r", "g", false, "-1", -1, -1, p.clone()).covers_tcp(22));
        assert!(rule("r", "g", false, "6", 22, 22, p.clone()).covers_tcp(22));
        assert!(!rule("r", "g", false, "udp", 22, 22, p.clone()).covers_tcp(22));
        assert!(!rule("r", "g", false, "icmp", -1, -1, p).covers_tcp(22));
    }

    #[test]
    fn groups_are_combined() {
        let rules = [
            tcp_in("sgr-a", "sg-a", 22, Peer::Cidr(net("203.0.113.0/24"))),
            tcp_in("sgr-b", "sg-b", 22, Peer::Cidr(net("198.51.100.0/24"))),
            tcp_in("sgr-c", "sg-c", 22, Peer::Cidr(net("0.0.0.0/0"))),
        ];
        let groups = vec!["sg-a".to_owned(), "sg-b".to_owned()];
        let ep = vec!["sg-e".to_owned()];
        let admit = |ip: [u8; 4]| {
            admitting_rule(&rules, &groups, &ep, 22, Ipv4Addr::from(ip)).map(|r| r.id.clone())
        };
        assert_eq!(admit([203, 0, 113, 7]).as_deref(), Some("sgr-a"));
        assert_eq!(admit([198, 51, 100, 9]).as_deref(), Some("sgr-b"));
        // sg-c is not on the instance.
        assert_eq!(admit([192, 0, 2, 1]), None);
        assert_eq!(rules_of(&rules, &groups).count(), 2);
    }

    #[test]
    fn the_endpoint_group_admits_everyone() {
        let rules = [tcp_in("sgr-e", "sg-i", 22, Peer::Group("sg-e".into()))];
        let groups = vec!["sg-i".to_owned()];
        let ep = vec!["sg-e".to_owned()];
        let anyone = Ipv4Addr::new(192, 0, 2, 1);
        assert!(admitting_rule(&rules, &groups, &ep, 22, anyone).is_some());
        assert!(admitting_rule(&rules, &groups, &ep, 3389, anyone).is_none());
        let other = vec!["sg-x".to_owned()];
        assert!(admitting_rule(&rules, &groups, &other, 22, anyone).is_none());
    }

    #[test]
    fn wider_than_expected_names_the_reason() {
        let expect = [net("203.0.113.0/24")];
        let vpc = [net("10.0.0.0/16")];
        assert_eq!(
            wider_than_expected(net("203.0.113.0/25"), &expect, &vpc),
            None
        );
        assert_eq!(
            wider_than_expected(net("203.0.113.0/24"), &expect, &vpc),
            None
        );
        let any = wider_than_expected(net("0.0.0.0/0"), &expect, &vpc).unwrap_or_default();
        assert!(any.contains("every address"), "{any}");
        let v = wider_than_expected(net("10.0.0.0/16"), &expect, &vpc).unwrap_or_default();
        assert!(v.contains("VPC"), "{v}");
        let v = wider_than_expected(net("10.0.1.0/24"), &expect, &vpc).unwrap_or_default();
        assert!(v.contains("VPC"), "{v}");
        let w = wider_than_expected(net("203.0.112.0/23"), &expect, &vpc).unwrap_or_default();
        assert!(w.contains("not inside 203.0.113.0/24"), "{w}");
    }

    #[test]
    fn checkip_answers() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n203.0.113.7\n";
        assert_eq!(
            parse_checkip_response(ok),
            Ok(Ipv4Addr::new(203, 0, 113, 7))
        );
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nc\r\n203.0.113.7\n\r\n0\r\n\r\n";
        assert_eq!(
            parse_checkip_response(chunked),
            Ok(Ipv4Addr::new(203, 0, 113, 7))
        );
        assert!(parse_checkip_response(b"HTTP/1.1 503 Busy\r\n\r\n").is_err());
        assert!(parse_checkip_response(b"HTTP/1.1 200 OK\r\n\r\nhello").is_err());
        assert!(parse_checkip_response(b"garbage").is_err());
    }

    fn facts(
        pci: bool,
        instance_rules: Vec<Rule>,
        expect: &[&str],
        client: Option<[u8; 4]>,
    ) -> Facts {
        let mut rules = vec![rule(
            "sgr-out",
            "sg-e",
            true,
            "tcp",
            22,
            22,
            Peer::Group("sg-i".into()),
        )];
        rules.extend(instance_rules);
        Facts {
            instance_id: "i-1".into(),
            port: 22,
            use_fips: false,
            expect: expect.iter().map(|s| net(s)).collect(),
            client: client.map_or(ClientAddr::Offline, |c| ClientAddr::Given(c.into())),
            instance: Ok(InstanceInfo {
                id: "i-1".into(),
                state: "running".into(),
                private_ip: Some(Ipv4Addr::new(10, 0, 1, 10)),
                vpc_id: Some("vpc-1".into()),
                subnet_id: Some("subnet-1".into()),
                availability_zone: None,
                security_group_ids: vec!["sg-i".into()],
            }),
            eice_id: None,
            endpoints: Ok(vec![EndpointInfo {
                id: "eice-1".into(),
                subnet_id: Some("subnet-1".into()),
                state: "create-complete".into(),
                preserve_client_ip: Some(pci),
                security_group_ids: vec!["sg-e".into()],
                ip_address_type: Some("ipv4".into()),
                dns_name: Some("eice-1.example".into()),
                ..Default::default()
            }]),
            rules: Ok(rules),
            endpoint_subnet_cidr: Some(net("10.0.1.0/24")),
            vpc_cidrs: vec![net("10.0.0.0/16")],
            aws_args: " --region r".into(),
        }
    }

    fn verdicts(f: &Facts) -> Vec<Status> {
        evaluate(f).iter().map(|c| c.status).collect()
    }

    use Status::{Fail, Pass, Skip, Warn};

    #[test]
    fn restriction_done_right() {
        let f = facts(
            true,
            vec![tcp_in(
                "sgr-c",
                "sg-i",
                22,
                Peer::Cidr(net("203.0.113.0/24")),
            )],
            &["203.0.113.0/24"],
            Some([203, 0, 113, 7]),
        );
        assert_eq!(verdicts(&f), [Pass, Pass, Pass, Pass, Pass, Pass, Pass]);
    }

    #[test]
    fn pci_off_with_only_a_client_cidr_fails_with_the_way_out() {
        let f = facts(
            false,
            vec![tcp_in(
                "sgr-c",
                "sg-i",
                22,
                Peer::Cidr(net("203.0.113.0/24")),
            )],
            &[],
            Some([203, 0, 113, 7]),
        );
        let checks = evaluate(&f);
        assert_eq!(verdicts(&f), [Pass, Pass, Pass, Pass, Fail, Skip, Pass]);
        let c5 = &checks[4];
        assert!(c5.message.contains("sgr-c"), "{}", c5.message);
        assert!(
            c5.fix.as_deref().unwrap_or_default().contains(
                "modify-instance-connect-endpoint --instance-connect-endpoint-id eice-1 --preserve-client-ip --region r"
            ),
            "{:?}",
            c5.fix
        );
        assert!(c5.details.iter().any(|d| d.contains("aws:SourceIp")));
    }

    #[test]
    fn pci_off_with_the_endpoint_group_passes_unless_a_restriction_is_expected() {
        let rules = vec![tcp_in("sgr-g", "sg-i", 22, Peer::Group("sg-e".into()))];
        let f = facts(false, rules.clone(), &[], None);
        assert_eq!(verdicts(&f)[4], Pass);
        let f = facts(false, rules, &["203.0.113.0/24"], None);
        assert_eq!(verdicts(&f)[4], Fail);
        // A rule for the endpoint's whole subnet works too.
        let f = facts(
            false,
            vec![tcp_in("sgr-s", "sg-i", 22, Peer::Cidr(net("10.0.0.0/16")))],
            &[],
            None,
        );
        assert_eq!(verdicts(&f)[4], Pass);
    }

    #[test]
    fn defeating_rules_are_named() {
        let f = facts(
            true,
            vec![
                tcp_in("sgr-ok", "sg-i", 22, Peer::Cidr(net("203.0.113.0/24"))),
                tcp_in("sgr-ep", "sg-i", 22, Peer::Group("sg-e".into())),
                rule(
                    "sgr-all",
                    "sg-i",
                    false,
                    "-1",
                    -1,
                    -1,
                    Peer::Cidr(net("0.0.0.0/0")),
                ),
                tcp_in("sgr-vpc", "sg-i", 22, Peer::Cidr(net("10.0.0.0/16"))),
                tcp_in("sgr-other-port", "sg-i", 80, Peer::Cidr(net("0.0.0.0/0"))),
            ],
            &["203.0.113.0/24"],
            Some([203, 0, 113, 7]),
        );
        let c5 = &evaluate(&f)[4];
        assert_eq!(c5.status, Fail);
        for id in ["sgr-ep", "sgr-all", "sgr-vpc"] {
            assert!(c5.message.contains(id), "{id}: {}", c5.message);
            assert!(
                c5.fix.as_deref().unwrap_or_default().contains(&format!(
                    "revoke-security-group-ingress --group-id sg-i --security-group-rule-ids {id}"
                )),
                "{:?}",
                c5.fix
            );
        }
        assert!(!c5.message.contains("sgr-ok "), "{}", c5.message);
        assert!(!c5.message.contains("sgr-other-port"), "{}", c5.message);
    }

    #[test]
    fn the_client_outside_is_refused() {
        let f = facts(
            true,
            vec![tcp_in(
                "sgr-c",
                "sg-i",
                22,
                Peer::Cidr(net("203.0.113.0/24")),
            )],
            &["203.0.113.0/24"],
            Some([198, 51, 100, 9]),
        );
        let checks = evaluate(&f);
        assert_eq!(checks[5].status, Fail);
        assert!(checks[5].message.contains("198.51.100.9"));
        assert!(checks[5].message.contains("will be refused"));
        // No restriction expected: the fix is to allow this address.
        let f = facts(
            true,
            vec![tcp_in(
                "sgr-c",
                "sg-i",
                22,
                Peer::Cidr(net("203.0.113.0/24")),
            )],
            &[],
            Some([198, 51, 100, 9]),
        );
        assert!(
            evaluate(&f)[5]
                .fix
                .as_deref()
                .unwrap_or_default()
                .contains("--cidr 198.51.100.9/32")
        );
    }

    #[test]
    fn missing_egress_and_present_ingress_on_the_endpoint() {
        let mut f = facts(
            true,
            vec![
                tcp_in("sgr-c", "sg-i", 22, Peer::Cidr(net("203.0.113.0/24"))),
                tcp_in("sgr-ein", "sg-e", 443, Peer::Cidr(net("0.0.0.0/0"))),
            ],
            &[],
            None,
        );
        if let Ok(rules) = &mut f.rules {
            rules.retain(|r| r.id != "sgr-out");
            rules.push(rule(
                "sgr-out-rdp",
                "sg-e",
                true,
                "tcp",
                3389,
                3389,
                Peer::Group("sg-i".into()),
            ));
        }
        let checks = evaluate(&f);
        assert_eq!(checks[2].status, Fail);
        assert!(
            checks[2]
                .fix
                .as_deref()
                .unwrap_or_default()
                .contains("authorize-security-group-egress --group-id sg-e")
        );
        assert_eq!(checks[3].status, Warn);
        assert!(checks[3].message.contains("sgr-ein"));
    }

    #[test]
    fn prefix_lists_are_a_warning() {
        let f = facts(
            true,
            vec![tcp_in(
                "sgr-pl",
                "sg-i",
                22,
                Peer::PrefixList("pl-1".into()),
            )],
            &["203.0.113.0/24"],
            Some([203, 0, 113, 7]),
        );
        let v = verdicts(&f);
        assert_eq!((v[4], v[5]), (Warn, Warn));
    }

    #[test]
    fn exit_status_counts_only_failures() {
        let c = |s| Check::new(1, "instance", s, "m");
        assert_eq!(exit_status(&[c(Pass), c(Warn), c(Skip)]), 0);
        assert_eq!(exit_status(&[c(Pass), c(Fail)]), 1);
    }
}
