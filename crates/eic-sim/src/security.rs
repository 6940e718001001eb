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
//! An IPv6-only instance (reached by a dual-stack or IPv6 endpoint) sees
//! the endpoint interface's IPv6 address, in its subnet's IPv6 CIDR, always
//! (Preserve Client IP is IPv4-only): its IPv6 rules decide, never its IPv4
//! ones.
//!
//! This is written independently of the client's `doctor` module (which
//! judges the same rules from what the API returns), so that a mistake in
//! one shows up as a disagreement in the tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use super::{Endpoint, Instance, World};

/// What a rule allows traffic from (inbound) or to (outbound).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// An IPv4 CIDR such as `203.0.113.0/24` or `0.0.0.0/0`.
    Cidr(String),
    /// An IPv6 CIDR such as `2600:1f18:1234:5601::/64` or `::/0`.
    CidrV6(String),
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

fn cidr6_contains(cidr: &str, ip: Ipv6Addr) -> bool {
    cidr.parse::<Ipv6Net>().is_ok_and(|net| net.contains(&ip))
}

/// Whether a rule's peer holds `ip`, of either family.
fn peer_holds(peer: &Peer, ip: Option<IpAddr>) -> bool {
    match (peer, ip) {
        (Peer::Cidr(c), Some(IpAddr::V4(ip))) => cidr_contains(c, ip),
        (Peer::CidrV6(c), Some(IpAddr::V6(ip))) => cidr6_contains(c, ip),
        _ => false,
    }
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
    // The address the endpoint connects to: the private IPv4, else (an
    // IPv6-only instance) the IPv6 one.
    let v4: Option<Ipv4Addr> = instance.private_ip.as_deref().and_then(|s| s.parse().ok());
    let instance_ip: Option<IpAddr> = match v4 {
        Some(ip) => Some(IpAddr::V4(ip)),
        None => instance
            .ipv6_address
            .as_deref()
            .and_then(|s| s.parse::<Ipv6Addr>().ok())
            .map(IpAddr::V6),
    };

    let egress_ok = rules(world, &endpoint.security_group_ids)
        .filter(|r| r.egress && r.covers_tcp(port))
        .any(|r| match &r.peer {
            Peer::Group(g) => instance_groups.contains(g),
            peer => peer_holds(peer, instance_ip),
        });
    if !egress_ok {
        return Err(format!(
            "the endpoint's security groups allow no outbound tcp/{port} to {}",
            instance.id
        ));
    }

    let source: Option<IpAddr> = match instance_ip {
        Some(IpAddr::V6(_)) => endpoint
            .private_ipv6
            .as_deref()
            .and_then(|s| s.parse::<Ipv6Addr>().ok())
            .map(IpAddr::V6),
        _ => source_address(endpoint, client).map(IpAddr::V4),
    };
    let ingress_ok = rules(world, &instance_groups)
        .filter(|r| !r.egress && r.covers_tcp(port))
        .any(|r| match &r.peer {
            Peer::Group(g) => endpoint.security_group_ids.contains(g),
            peer => peer_holds(peer, source),
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

    /// An IPv6-only instance behind a dual-stack endpoint sees the
    /// endpoint's IPv6 address whatever Preserve Client IP says: an IPv6
    /// rule holding it admits, IPv4 rules never do.
    #[test]
    fn an_ipv6_only_instance_sees_the_endpoints_ipv6_address() {
        let (mut w, mut e, mut i) = demo();
        e.ip_address_type = "dualstack".into();
        e.preserve_client_ip = false;
        i.private_ip = None;
        i.ipv6_address = Some("2600:1f18:1234:5601::10".into());
        let v6 = |id: &str, c: &str| SgRule::tcp_in(id, 22, Peer::CidrV6(c.into()));
        for (rules, ok) in [
            (vec![v6("sgr-1", "2600:1f18:1234:5601::/64")], true),
            (vec![v6("sgr-1", "::/0")], true),
            (vec![v6("sgr-1", "2600:1f18:1234:5601::10/128")], false),
            (vec![v6("sgr-1", "2001:db8::/32")], false),
            (
                vec![
                    SgRule::tcp_in("sgr-2", 22, Peer::Cidr("0.0.0.0/0".into())),
                    SgRule::tcp_in("sgr-3", 22, Peer::Cidr("10.0.1.0/24".into())),
                ],
                false,
            ),
        ] {
            set_instance_rules(&mut w, rules.clone());
            let got = tunnel_allowed(&w, &e, &i, 22, CLIENT);
            assert_eq!(got.is_ok(), ok, "{rules:?}: {got:?}");
            if let Err(why) = got {
                assert!(why.contains("from 2600:1f18:1234:5601::5"), "{why}");
            }
        }
        // The endpoint's egress reaches it by an IPv6 CIDR too.
        set_instance_rules(&mut w, vec![v6("sgr-1", "::/0")]);
        let sg = e.security_group_ids[0].clone();
        let g = w.security_groups.iter_mut().find(|g| g.id == sg).unwrap();
        g.rules = vec![SgRule::tcp_out(
            "sgr-4",
            22,
            Peer::CidrV6("2600:1f18:1234:5601::/64".into()),
        )];
        assert_eq!(tunnel_allowed(&w, &e, &i, 22, CLIENT), Ok(()));
        let g = w.security_groups.iter_mut().find(|g| g.id == sg).unwrap();
        g.rules = vec![SgRule::tcp_out("sgr-4", 22, Peer::Cidr("0.0.0.0/0".into()))];
        assert!(tunnel_allowed(&w, &e, &i, 22, CLIENT).is_err());
    }
}
