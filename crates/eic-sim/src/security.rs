//! Security groups as the EICE relay enforces them, before it connects TCP
//! to the instance.
//!
//! AWS evaluates the union of every group on the instance's network
//! interfaces. The source the instance sees depends on Preserve Client IP:
//! with it on, the client's own (public or NAT) address; with it off, the
//! endpoint's network interface address. A rule that references one of the
//! endpoint's security groups matches in both modes. The endpoint's own
//! outbound rules must allow the port to the instance as well.
//!
//! This is written independently of the client's `doctor` module (which
//! judges the same rules from what the API returns), so that a mistake in
//! one shows up as a disagreement in the tests.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{Endpoint, Instance, World};

/// What a rule allows traffic from (inbound) or to (outbound).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// An IPv4 CIDR such as `203.0.113.0/24` or `0.0.0.0/0`.
    Cidr(String),
    /// Members of a security group (`sg-…`).
    Group(String),
    /// A managed prefix list (`pl-…`). The simulator does not resolve
    /// prefix lists: such a rule matches nothing when tunnels are checked.
    PrefixList(String),
}

/// One security group rule, as `DescribeSecurityGroupRules` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SgRule {
    /// `sgr-` followed by 17 hex digits.
    pub id: String,
    /// Outbound (`true`) or inbound.
    pub egress: bool,
    /// `tcp`, `udp`, `icmp`, or `-1` for all traffic.
    pub protocol: String,
    /// First port (`-1` with protocol `-1`).
    pub from_port: i32,
    /// Last port (`-1` with protocol `-1`).
    pub to_port: i32,
    /// The other side.
    pub peer: Peer,
    /// The rule's description, if it has one.
    pub description: Option<String>,
}

impl SgRule {
    /// An inbound TCP rule for one port.
    pub fn tcp_in(id: &str, port: u16, peer: Peer) -> SgRule {
        SgRule::tcp(id, false, port, peer)
    }

    /// An outbound TCP rule for one port.
    pub fn tcp_out(id: &str, port: u16, peer: Peer) -> SgRule {
        SgRule::tcp(id, true, port, peer)
    }

    fn tcp(id: &str, egress: bool, port: u16, peer: Peer) -> SgRule {
        SgRule {
            id: id.to_string(),
            egress,
            protocol: "tcp".to_string(),
            from_port: i32::from(port),
            to_port: i32::from(port),
            peer,
            description: None,
        }
    }

    /// A rule for all traffic (protocol `-1`), in or out.
    pub fn all(id: &str, egress: bool, peer: Peer) -> SgRule {
        SgRule {
            id: id.to_string(),
            egress,
            protocol: "-1".to_string(),
            from_port: -1,
            to_port: -1,
            peer,
            description: None,
        }
    }

    /// The same rule with a description.
    pub fn described(mut self, description: &str) -> SgRule {
        self.description = Some(description.to_string());
        self
    }

    /// Whether the rule covers TCP to `port`.
    fn covers_tcp(&self, port: u16) -> bool {
        match self.protocol.as_str() {
            "-1" | "all" => true,
            "tcp" | "6" => (self.from_port..=self.to_port).contains(&i32::from(port)),
            _ => false,
        }
    }
}

/// A security group and its rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityGroup {
    /// `sg-` followed by 17 hex digits.
    pub id: String,
    /// The group name.
    pub name: String,
    /// The VPC the group belongs to.
    pub vpc_id: String,
    /// Inbound and outbound rules.
    pub rules: Vec<SgRule>,
}

/// The source address the instance sees for a tunnel through `endpoint`.
pub(crate) fn source_address(endpoint: &Endpoint, client: Ipv4Addr) -> Option<Ipv4Addr> {
    if endpoint.preserve_client_ip {
        Some(client)
    } else {
        endpoint.private_ip.as_deref().and_then(|s| s.parse().ok())
    }
}

fn cidr_contains(cidr: &str, ip: Ipv4Addr) -> bool {
    cidr.parse::<Ipv4Net>().is_ok_and(|net| net.contains(&ip))
}

fn rules<'w>(world: &'w World, groups: &'w [String]) -> impl Iterator<Item = &'w SgRule> + 'w {
    world
        .security_groups
        .iter()
        .filter(|g| groups.contains(&g.id))
        .flat_map(|g| g.rules.iter())
}

/// Decides whether the endpoint may connect to `port` of `instance` for a
/// client at `client`: `Err` says why not, in the words of the log.
pub(crate) fn tunnel_allowed(
    world: &World,
    endpoint: &Endpoint,
    instance: &Instance,
    port: u16,
    client: Ipv4Addr,
) -> Result<(), String> {
    let instance_groups = instance.security_group_ids();
    let instance_ip: Option<Ipv4Addr> = instance.private_ip.as_deref().and_then(|s| s.parse().ok());

    let egress_ok = rules(world, &endpoint.security_group_ids)
        .filter(|r| r.egress && r.covers_tcp(port))
        .any(|r| match &r.peer {
            Peer::Group(g) => instance_groups.contains(g),
            Peer::Cidr(c) => instance_ip.is_some_and(|ip| cidr_contains(c, ip)),
            Peer::PrefixList(_) => false,
        });
    if !egress_ok {
        return Err(format!(
            "the endpoint's security groups allow no outbound tcp/{port} to {}",
            instance.id
        ));
    }

    let source = source_address(endpoint, client);
    let ingress_ok = rules(world, &instance_groups)
        .filter(|r| !r.egress && r.covers_tcp(port))
        .any(|r| match &r.peer {
            Peer::Group(g) => endpoint.security_group_ids.contains(g),
            Peer::Cidr(c) => source.is_some_and(|ip| cidr_contains(c, ip)),
            Peer::PrefixList(_) => false,
        });
    if !ingress_ok {
        let seen = source.map_or_else(|| "an unknown address".to_string(), |ip| ip.to_string());
        return Err(format!(
            "the security groups of {} allow no inbound tcp/{port} from {seen}",
            instance.id
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

    fn demo() -> (World, Endpoint, Instance) {
        let w = World::demo();
        let e = w.endpoints[0].clone();
        let i = w.instances[0].clone();
        (w, e, i)
    }

    fn set_instance_rules(w: &mut World, rules: Vec<SgRule>) {
        let sg = w.instances[0].security_group_ids()[0].clone();
        let g = w.security_groups.iter_mut().find(|g| g.id == sg).unwrap();
        g.rules = rules;
    }

    #[test]
    fn the_demo_world_lets_tunnels_through_in_both_modes() {
        let (w, mut e, i) = demo();
        assert_eq!(tunnel_allowed(&w, &e, &i, 22, CLIENT), Ok(()));
        assert_eq!(tunnel_allowed(&w, &e, &i, 3389, CLIENT), Ok(()));
        e.preserve_client_ip = false;
        assert_eq!(tunnel_allowed(&w, &e, &i, 22, CLIENT), Ok(()));
    }

    #[test]
    fn the_source_depends_on_preserve_client_ip() {
        let (mut w, mut e, i) = demo();
        set_instance_rules(
            &mut w,
            vec![SgRule::tcp_in(
                "sgr-00000000000000001",
                22,
                Peer::Cidr("203.0.113.0/24".into()),
            )],
        );
        assert_eq!(tunnel_allowed(&w, &e, &i, 22, CLIENT), Ok(()));
        let outside = Ipv4Addr::new(198, 51, 100, 9);
        let err = tunnel_allowed(&w, &e, &i, 22, outside).unwrap_err();
        assert!(err.contains("from 198.51.100.9"), "{err}");
        assert!(tunnel_allowed(&w, &e, &i, 3389, CLIENT).is_err());
        // Off: the instance sees the endpoint's address, which the CIDR misses.
        e.preserve_client_ip = false;
        let err = tunnel_allowed(&w, &e, &i, 22, CLIENT).unwrap_err();
        assert!(err.contains("from 10.0.1.5"), "{err}");
    }

    #[test]
    fn egress_must_reach_the_instance() {
        let (mut w, e, i) = demo();
        let sg = e.security_group_ids[0].clone();
        let g = w.security_groups.iter_mut().find(|g| g.id == sg).unwrap();
        g.rules = vec![SgRule::tcp_out(
            "sgr-00000000000000002",
            3389,
            Peer::Cidr("10.0.0.0/16".into()),
        )];
        assert!(tunnel_allowed(&w, &e, &i, 3389, CLIENT).is_ok());
        let err = tunnel_allowed(&w, &e, &i, 22, CLIENT).unwrap_err();
        assert!(err.contains("outbound tcp/22"), "{err}");
        let g = w.security_groups.iter_mut().find(|g| g.id == sg).unwrap();
        g.rules = vec![SgRule::all(
            "sgr-00000000000000003",
            true,
            Peer::Cidr("0.0.0.0/0".into()),
        )];
        assert!(tunnel_allowed(&w, &e, &i, 22, CLIENT).is_ok());
    }
}
