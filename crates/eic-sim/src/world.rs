//! The simulated AWS account: VPCs, subnets, security groups, instances
//! and endpoints, and the small account the demo and the tests start from.

use std::net::SocketAddr;

use crate::security::{Peer, SecurityGroup, SgRule};

/// The simulated AWS account: instances and Instance Connect Endpoints.
#[derive(Clone, Debug)]
pub struct World {
    /// EC2 instances.
    pub instances: Vec<Instance>,
    /// EC2 Instance Connect Endpoints.
    pub endpoints: Vec<Endpoint>,
    /// The only region the simulator answers for; default `us-east-1`.
    pub region: String,
    /// VPCs, for `DescribeVpcs`.
    pub vpcs: Vec<Vpc>,
    /// Subnets, for `DescribeSubnets`.
    pub subnets: Vec<Subnet>,
    /// Security groups with their rules, for `DescribeSecurityGroupRules`
    /// and enforced by the tunnel relay (see `security.rs`).
    pub security_groups: Vec<SecurityGroup>,
    /// An IAM policy capping `ec2-instance-connect:maxTunnelDuration`
    /// (`NumericLessThanEquals`): a tunnel asking for more, or for the
    /// default 3600 s, is denied with a 403.
    pub max_tunnel_duration_cap: Option<u64>,
    /// Network interfaces attached to no instance (a Lambda function's, a
    /// VPC endpoint's, one made by hand), for `DescribeNetworkInterfaces`.
    pub loose_interfaces: Vec<LooseInterface>,
}

/// A network interface attached to no instance: its description is
/// whatever its creator wrote.
#[derive(Clone, Debug, Default)]
pub struct LooseInterface {
    /// `eni-…`.
    pub id: String,
    pub vpc_id: String,
    pub subnet_id: String,
    pub description: String,
    pub security_group_ids: Vec<String>,
}

/// One VPC.
#[derive(Clone, Debug)]
pub struct Vpc {
    /// E.g. `vpc-1`.
    pub id: String,
    /// The primary IPv4 CIDR, then any secondary ones.
    pub cidrs: Vec<String>,
}

/// One subnet.
#[derive(Clone, Debug)]
pub struct Subnet {
    /// E.g. `subnet-1`.
    pub id: String,
    /// The VPC it belongs to.
    pub vpc_id: String,
    /// Its IPv4 CIDR, inside one of the VPC's.
    pub cidr: String,
    /// Its IPv6 CIDR (a /64), if it has one: a dual-stack or IPv6 endpoint
    /// in it reaches IPv6-only instances from an address there.
    pub ipv6_cidr: Option<String>,
    /// E.g. `us-east-1a`.
    pub availability_zone: String,
}

/// One network interface of an instance.
#[derive(Clone, Debug)]
pub struct NetworkInterface {
    /// `eni-…`.
    pub id: String,
    /// The security groups on this interface.
    pub security_group_ids: Vec<String>,
}

/// One EC2 instance.
#[derive(Clone, Debug)]
pub struct Instance {
    /// `i-` followed by 8 or 17 hex digits.
    pub id: String,
    /// `pending`, `running`, `shutting-down`, `terminated`, `stopping` or `stopped`.
    pub state: String,
    /// The private IPv4 address the tunnel names; `None` is omitted from
    /// answers (with `ipv6_address` set: an IPv6-only instance).
    pub private_ip: Option<String>,
    /// The primary IPv6 address, `ipv6Address` in answers.
    pub ipv6_address: Option<String>,
    /// The VPC the instance is in.
    pub vpc_id: String,
    /// The subnet the instance is in.
    pub subnet_id: String,
    /// E.g. `us-east-1a`.
    pub availability_zone: String,
    /// Where a tunnel to port 22 really connects.
    pub ssh: Option<SocketAddr>,
    /// Where a tunnel to port 3389 really connects.
    pub rdp: Option<SocketAddr>,
    /// What `GetConsoleOutput` returns (plain text; the API base64-encodes
    /// it). `None`: no output yet, so the answer has no `output` element.
    pub console_output: Option<String>,
    /// Makes `GetConsoleOutput` fail with `UnauthorizedOperation` (403), as
    /// for a caller without `ec2:GetConsoleOutput`.
    pub console_denied: bool,
    /// Network interfaces, the primary first; their security groups
    /// together decide what reaches the instance.
    pub network_interfaces: Vec<NetworkInterface>,
    /// Tags as (key, value), e.g. `("Name", "web-1")`.
    pub tags: Vec<(String, String)>,
}

impl Instance {
    /// The private DNS name EC2 gives the address, e.g.
    /// `ip-10-0-1-10.ec2.internal`.
    pub fn private_dns_name(&self) -> Option<String> {
        self.private_ip
            .as_ref()
            .map(|ip| format!("ip-{}.ec2.internal", ip.replace('.', "-")))
    }

    /// The value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The security groups that judge traffic to the primary private IP
    /// (what a tunnel reaches): those of the primary interface (device
    /// index 0, the first), each once. A secondary interface's groups
    /// guard only that interface's own addresses.
    pub fn security_group_ids(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for g in self
            .network_interfaces
            .first()
            .into_iter()
            .flat_map(|n| &n.security_group_ids)
        {
            if !out.contains(g) {
                out.push(g.clone());
            }
        }
        out
    }
}

/// One EC2 Instance Connect Endpoint.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `eice-` followed by 17 hex digits.
    pub id: String,
    /// The VPC the endpoint serves.
    pub vpc_id: String,
    /// The subnet the endpoint's interface is in.
    pub subnet_id: String,
    /// E.g. `create-complete`, `create-in-progress`, `delete-complete`.
    pub state: String,
    /// Whether the endpoint has a `FipsDnsName`.
    pub fips: bool,
    /// The `PreserveClientIp` setting: with it on, the instance sees the
    /// client's address ([`Simulator::set_client_public_ip`](crate::Simulator::set_client_public_ip)), else
    /// `private_ip`.
    pub preserve_client_ip: bool,
    /// The endpoint's security groups; their outbound rules are enforced.
    pub security_group_ids: Vec<String>,
    /// The address of the endpoint's network interface in its subnet: the
    /// source the instance sees with Preserve Client IP off.
    pub private_ip: Option<String>,
    /// The interface's IPv6 address in its subnet's IPv6 CIDR: the source
    /// an IPv6-only instance sees (Preserve Client IP is IPv4-only).
    pub private_ipv6: Option<String>,
    /// `ipv4`, `dualstack` or `ipv6`: which address families it reaches
    /// in the VPC (a tunnel to the other family is refused).
    pub ip_address_type: String,
    /// Whether it has `PublicDnsNames.Dualstack` names
    /// ([`endpoint_dualstack_dns_name`](crate::endpoint_dualstack_dns_name)).
    pub dualstack: bool,
    /// A `DnsName` to report instead of the service-shaped one, to play a
    /// broken or hostile API (`None`: [`endpoint_dns_name`](crate::endpoint_dns_name)).
    pub dns_name_override: Option<String>,
}

impl Default for World {
    fn default() -> Self {
        World {
            instances: Vec::new(),
            endpoints: Vec::new(),
            region: "us-east-1".to_string(),
            vpcs: Vec::new(),
            subnets: Vec::new(),
            security_groups: Vec::new(),
            max_tunnel_duration_cap: None,
            loose_interfaces: Vec::new(),
        }
    }
}

impl World {
    /// A small account to start from:
    ///
    /// * `i-0123456789abcdef0`: running, `vpc-1`/`subnet-1`, 10.0.1.10,
    ///   `us-east-1a`, tagged `Name=web-1`, `Role=web`;
    /// * `i-0000000000000dead`: stopped, same subnet, 10.0.1.11, tagged
    ///   `Name=web-1`, `Role=web` too (a stopped predecessor);
    /// * `i-0fedcba9876543210`: running, in `vpc-empty` (no endpoint),
    ///   10.9.0.10, tagged `Name=isolated`;
    /// * `eice-0123456789abcdef0`: `create-complete` in `vpc-1`/`subnet-1`
    ///   (interface address 10.0.1.5), with a FIPS name and Preserve Client IP
    ///   on, in security group [`DEMO_ENDPOINT_SG`];
    /// * `vpc-1` is 10.0.0.0/16 with `subnet-1` 10.0.1.0/24; `vpc-empty` is
    ///   10.9.0.0/16 with `subnet-empty` 10.9.0.0/24;
    /// * security groups, permissive but realistic: [`DEMO_ENDPOINT_SG`] allows
    ///   outbound tcp/22 and tcp/3389 to [`DEMO_INSTANCE_SG`], and
    ///   [`DEMO_INSTANCE_SG`] (on both instances in `vpc-1`, one interface
    ///   each) allows inbound tcp/22 and tcp/3389 from [`DEMO_ENDPOINT_SG`];
    ///   the instance in `vpc-empty` has [`DEMO_EMPTY_VPC_SG`] with the same
    ///   inbound rules.
    ///
    /// No instance has an `ssh` or `rdp` target (the caller fills them in)
    /// or console output.
    pub fn demo() -> World {
        let instance =
            |id: &str, state: &str, ip: &str, vpc: &str, subnet: &str, az: &str| Instance {
                id: id.to_string(),
                state: state.to_string(),
                private_ip: Some(ip.to_string()),
                ipv6_address: None,
                vpc_id: vpc.to_string(),
                subnet_id: subnet.to_string(),
                availability_zone: az.to_string(),
                ssh: None,
                rdp: None,
                console_output: None,
                console_denied: false,
                tags: match id {
                    "i-0fedcba9876543210" => vec![("Name".to_string(), "isolated".to_string())],
                    _ => vec![
                        ("Name".to_string(), "web-1".to_string()),
                        ("Role".to_string(), "web".to_string()),
                    ],
                },
                network_interfaces: vec![NetworkInterface {
                    id: format!("eni-{}", id.trim_start_matches("i-")),
                    security_group_ids: vec![
                        if vpc == "vpc-1" {
                            DEMO_INSTANCE_SG
                        } else {
                            DEMO_EMPTY_VPC_SG
                        }
                        .to_string(),
                    ],
                }],
            };
        let ingress_from_endpoint = |prefix: &str| {
            vec![
                SgRule::tcp_in(
                    &format!("sgr-{prefix}00000000000022"),
                    22,
                    Peer::Group(DEMO_ENDPOINT_SG.into()),
                ),
                SgRule::tcp_in(
                    &format!("sgr-{prefix}00000000003389"),
                    3389,
                    Peer::Group(DEMO_ENDPOINT_SG.into()),
                ),
            ]
        };
        World {
            instances: vec![
                instance(
                    "i-0123456789abcdef0",
                    "running",
                    "10.0.1.10",
                    "vpc-1",
                    "subnet-1",
                    "us-east-1a",
                ),
                instance(
                    "i-0000000000000dead",
                    "stopped",
                    "10.0.1.11",
                    "vpc-1",
                    "subnet-1",
                    "us-east-1a",
                ),
                instance(
                    "i-0fedcba9876543210",
                    "running",
                    "10.9.0.10",
                    "vpc-empty",
                    "subnet-empty",
                    "us-east-1b",
                ),
            ],
            endpoints: vec![Endpoint {
                id: "eice-0123456789abcdef0".to_string(),
                vpc_id: "vpc-1".to_string(),
                subnet_id: "subnet-1".to_string(),
                state: "create-complete".to_string(),
                fips: true,
                preserve_client_ip: true,
                security_group_ids: vec![DEMO_ENDPOINT_SG.to_string()],
                private_ip: Some("10.0.1.5".to_string()),
                private_ipv6: Some("2600:1f18:1234:5601::5".to_string()),
                ip_address_type: "ipv4".to_string(),
                dualstack: false,
                dns_name_override: None,
            }],
            region: "us-east-1".to_string(),
            vpcs: vec![
                Vpc {
                    id: "vpc-1".to_string(),
                    cidrs: vec!["10.0.0.0/16".to_string()],
                },
                Vpc {
                    id: "vpc-empty".to_string(),
                    cidrs: vec!["10.9.0.0/16".to_string()],
                },
            ],
            subnets: vec![
                Subnet {
                    id: "subnet-1".to_string(),
                    vpc_id: "vpc-1".to_string(),
                    cidr: "10.0.1.0/24".to_string(),
                    ipv6_cidr: Some("2600:1f18:1234:5601::/64".to_string()),
                    availability_zone: "us-east-1a".to_string(),
                },
                Subnet {
                    id: "subnet-empty".to_string(),
                    vpc_id: "vpc-empty".to_string(),
                    cidr: "10.9.0.0/24".to_string(),
                    ipv6_cidr: None,
                    availability_zone: "us-east-1b".to_string(),
                },
            ],
            security_groups: vec![
                SecurityGroup {
                    id: DEMO_ENDPOINT_SG.to_string(),
                    name: "eice".to_string(),
                    vpc_id: "vpc-1".to_string(),
                    rules: vec![
                        SgRule::tcp_out(
                            "sgr-0e000000000000022",
                            22,
                            Peer::Group(DEMO_INSTANCE_SG.into()),
                        ),
                        SgRule::tcp_out(
                            "sgr-0e000000000003389",
                            3389,
                            Peer::Group(DEMO_INSTANCE_SG.into()),
                        ),
                    ],
                },
                SecurityGroup {
                    id: DEMO_INSTANCE_SG.to_string(),
                    name: "instance".to_string(),
                    vpc_id: "vpc-1".to_string(),
                    rules: ingress_from_endpoint("0a0"),
                },
                SecurityGroup {
                    id: DEMO_EMPTY_VPC_SG.to_string(),
                    name: "instance".to_string(),
                    vpc_id: "vpc-empty".to_string(),
                    rules: ingress_from_endpoint("0b0"),
                },
            ],
            max_tunnel_duration_cap: None,
            loose_interfaces: Vec::new(),
        }
    }

    pub(crate) fn instance(&self, id: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.id == id)
    }

    pub(crate) fn endpoint(&self, id: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.id == id)
    }

    /// The security group `id`, to change its rules.
    pub fn security_group_mut(&mut self, id: &str) -> Option<&mut SecurityGroup> {
        self.security_groups.iter_mut().find(|g| g.id == id)
    }
}

/// The demo endpoint's security group.
pub const DEMO_ENDPOINT_SG: &str = "sg-0123456789abcdef0";
/// The security group of the demo instances in `vpc-1`.
pub const DEMO_INSTANCE_SG: &str = "sg-0a1b2c3d4e5f60718";
/// The security group of the demo instance in `vpc-empty`.
pub const DEMO_EMPTY_VPC_SG: &str = "sg-0b1b2c3d4e5f60718";
