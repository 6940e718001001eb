//! CIDR blocks, as security-group rules and `--expect-cidr` give them.

use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net};

/// Parse a rule's IPv4 CIDR, normalised to its network (AWS does the same).
pub fn parse_cidr(s: &str) -> Result<Ipv4Net, String> {
    let bad =
        |e: &dyn std::fmt::Display| format!("'{s}' is not an IPv4 CIDR (e.g. 203.0.113.0/24): {e}");
    let net = if s.contains('/') {
        s.parse::<Ipv4Net>().map_err(|e| bad(&e))?
    } else {
        Ipv4Net::from(s.parse::<Ipv4Addr>().map_err(|e| bad(&e))?)
    };
    Ok(net.trunc())
}

/// The widest prefix that passes without a warning: /8 for IPv4 (16.7
/// million addresses), /32 for IPv6 (a whole provider's allocation).
const WIDEST_QUIET: (u8, u8) = (8, 32);

/// Judge networks to allow in, as their union (each family on its own,
/// adjacent and nested networks merged): an error when the union is every
/// address of a family, which is no restriction (`0.0.0.0/1,128.0.0.0/1`
/// as much as `0.0.0.0/0`); else a warning for each part of it wider than
/// /8 (IPv4) or /32 (IPv6), naming the networks it came from.
pub fn judge_allowed(nets: &[IpNet]) -> Result<Vec<String>, String> {
    let given = |part: &IpNet| -> String {
        nets.iter()
            .filter(|n| part.contains(*n))
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let union = IpNet::aggregate(&nets.to_vec());
    if let Some(all) = union.iter().find(|n| n.prefix_len() == 0) {
        let family = match all {
            IpNet::V4(_) => "IPv4",
            IpNet::V6(_) => "IPv6",
        };
        return Err(format!(
            "--allow {} allows every {family} address together: that is no restriction (name the client networks that may connect)",
            given(all)
        ));
    }
    Ok(union
        .iter()
        .filter_map(|part| {
            let (widest, bits) = match part {
                IpNet::V4(_) => (WIDEST_QUIET.0, 32),
                IpNet::V6(_) => (WIDEST_QUIET.1, 128),
            };
            (part.prefix_len() < widest).then(|| {
                let from = given(part);
                let from = match from == part.to_string() {
                    true => String::new(),
                    false => format!(" (from {from})"),
                };
                format!(
                    "--allow {part}{from} is wider than /{widest}: 2^{} addresses, every client among them gets in. Name narrower networks unless you mean this.",
                    bits - part.prefix_len()
                )
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn a_union_of_every_address_is_refused_naming_its_parts() {
        for list in [
            &["0.0.0.0/1", "128.0.0.0/1"][..],
            &["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1", "10.0.0.0/8"],
            &["0.0.0.0/0"],
            &["::/1", "8000::/1", "203.0.113.0/24"],
        ] {
            let err = judge_allowed(&nets(list)).unwrap_err();
            assert!(err.contains("allows every IP"), "{list:?}: {err}");
            let named = list.iter().filter(|n| err.contains(*n)).count();
            assert!(named >= 2 || list.len() == 1, "{list:?}: {err}");
        }
    }

    #[test]
    fn wide_parts_of_the_union_warn_narrow_ones_pass() {
        assert_eq!(
            judge_allowed(&nets(&["203.0.113.0/24", "10.0.0.0/8", "2001:db8::/32"])),
            Ok(vec![])
        );
        let w = judge_allowed(&nets(&["0.0.0.0/2", "64.0.0.0/2", "198.51.100.0/24"])).unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with(
                "--allow 0.0.0.0/1 (from 0.0.0.0/2, 64.0.0.0/2) is wider than /8: 2^31 addresses"
            ),
            "{}",
            w[0]
        );
        let w = judge_allowed(&nets(&["100.0.0.0/7", "2001:db8::/31"])).unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with("--allow 100.0.0.0/7 is wider than /8"),
            "{w:?}"
        );
        assert!(
            w[1].contains("2001:db8::/31 is wider than /32: 2^97"),
            "{w:?}"
        );
    }
}
