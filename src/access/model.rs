//! The facts doctor gathers and the checks it reports: plain data.

use std::net::Ipv4Addr;

use ipnet::{Ipv4Net, Ipv6Net};
use serde::Serialize;

use crate::aws::ec2::{self, EndpointInfo, InstanceInfo};

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
    /// `PASS`, `FAIL`, … as the checklist prints it.
    pub fn label(self) -> &'static str {
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
    /// A check with no fix and no details.
    pub fn new(id: u8, name: &'static str, status: Status, message: impl Into<String>) -> Check {
        Check {
            id,
            name,
            status,
            message: message.into(),
            fix: None,
            details: Vec::new(),
        }
    }

    /// With the `aws` command(s) that fix it.
    pub fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }

    /// With supporting facts.
    pub fn details(mut self, details: Vec<String>) -> Check {
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
    /// The rule's description, if it has one.
    pub description: Option<String>,
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

    /// The other side, in words: a CIDR, `security group sg-…`, ….
    pub fn peer_text(&self) -> String {
        match &self.peer {
            Peer::Cidr(n) => n.to_string(),
            Peer::CidrV6(c) => c.clone(),
            Peer::Group(g) => format!("security group {g}"),
            Peer::PrefixList(p) => format!("prefix list {p}"),
            Peer::Unknown => "an unknown peer".into(),
        }
    }

    /// The whole rule on one line, e.g. `sgr-… in sg-…: tcp/22 from 0.0.0.0/0`.
    pub fn text(&self) -> String {
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
    /// The address, when one is known.
    pub fn ip(&self) -> Option<Ipv4Addr> {
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
    /// The IPv6 CIDRs of the chosen endpoint's subnet, when known: a
    /// dual-stack or IPv6 endpoint reaches an IPv6-only instance from an
    /// address there.
    pub endpoint_subnet_cidrs_v6: Vec<Ipv6Net>,
    /// The instance VPC's IPv4 CIDRs, when known.
    pub vpc_cidrs: Vec<Ipv4Net>,
    /// Appended to every `aws` command in a fix: ` --region R [--profile P]`.
    pub aws_args: String,
    /// The instances the chosen endpoint serves (every instance with an
    /// interface in its VPC), when `restrict` looked them up, or why that
    /// failed; doctor leaves it `None`.
    pub served: Option<Result<Vec<ServedInstance>, String>>,
}

/// An instance an endpoint serves, and whether an IPv4 endpoint can reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedInstance {
    pub id: String,
    /// Whether it has a private IPv4 address (else it is IPv6-only).
    pub ipv4: bool,
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
        let chosen = ec2::choose_endpoint(endpoints, subnet)?;
        let why = if subnet.is_some() && chosen.subnet_id.as_deref() == subnet {
            "in the instance's own subnet"
        } else {
            "the first usable one in the VPC (none is in the instance's subnet)"
        };
        Some((chosen, why))
    }
}
