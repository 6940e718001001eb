//! The checks over hand-made facts, one scenario per table row where the
//! shape repeats.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::*;
use crate::aws::ec2::{EndpointInfo, InstanceInfo};

fn net(s: &str) -> Ipv4Net {
    parse_cidr(s).unwrap()
}

fn rule(id: &str, group: &str, egress: bool, proto: &str, from: i32, to: i32, peer: Peer) -> Rule {
    Rule {
        id: id.into(),
        group_id: group.into(),
        egress,
        protocol: proto.into(),
        from_port: from,
        to_port: to,
        peer,
        description: None,
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

fn facts(pci: bool, instance_rules: Vec<Rule>, expect: &[&str], client: Option<[u8; 4]>) -> Facts {
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
            ipv6: None,
            vpc_id: Some("vpc-1".into()),
            subnet_id: Some("subnet-1".into()),
            availability_zone: None,
            security_group_ids: vec!["sg-i".into()],
            ..Default::default()
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
        endpoint_subnet_cidrs_v6: Vec::new(),
        vpc_cidrs: vec![net("10.0.0.0/16")],
        aws_args: " --region r".into(),
        served: None,
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

#[test]
fn an_ipv6_only_instance_needs_an_endpoint_that_reaches_ipv6() {
    let mut f = facts(false, vec![], &[], None);
    if let Ok(i) = &mut f.instance {
        i.private_ip = None;
        i.ipv6 = Some("2600:1f18::10".parse().unwrap());
    }
    // An IPv6 egress rule covering the instance, instead of its group.
    if let Ok(rules) = &mut f.rules {
        rules[0].peer = Peer::CidrV6("2600:1f18::/56".into());
    }
    let checks = evaluate(&f);
    assert_eq!(checks[0].status, Pass, "{}", checks[0].message);
    assert!(
        checks[0].message.contains("IPv6-only"),
        "{}",
        checks[0].message
    );
    assert_eq!(checks[2].status, Pass, "{}", checks[2].message);
    let c7 = checks.iter().find(|c| c.name == "ip-address-type").unwrap();
    assert_eq!(c7.status, Fail, "{}", c7.message);
    assert!(
        c7.message.contains("cannot reach 2600:1f18::10"),
        "{}",
        c7.message
    );
    assert!(
        c7.fix
            .as_deref()
            .unwrap_or_default()
            .contains("--ip-address-type dualstack --no-preserve-client-ip"),
        "{:?}",
        c7.fix
    );

    // A dual-stack endpoint with Preserve Client IP off reaches it.
    if let Ok(eps) = &mut f.endpoints {
        eps[0].ip_address_type = Some("dualstack".into());
    }
    let checks = evaluate(&f);
    let c7 = checks.iter().find(|c| c.name == "ip-address-type").unwrap();
    assert_eq!(c7.status, Pass, "{}", c7.message);
}

/// An IPv6-only instance behind a dual-stack endpoint sees the endpoint's
/// IPv6 address, from its subnet's IPv6 CIDR: judged against that.
#[test]
fn an_ipv6_only_instance_is_judged_against_the_endpoint_subnets_ipv6_cidr() {
    let v6 = |rules: Vec<Rule>, expect: &[&str]| {
        let mut f = facts(false, rules, expect, None);
        if let Ok(i) = &mut f.instance {
            i.private_ip = None;
            i.ipv6 = Some("2600:1f18:0:5601::10".parse().unwrap());
        }
        if let Ok(eps) = &mut f.endpoints {
            eps[0].ip_address_type = Some("dualstack".into());
        }
        f.endpoint_subnet_cidrs_v6 = vec!["2600:1f18:0:5601::/64".parse().unwrap()];
        let checks = evaluate(&f);
        checks
            .into_iter()
            .find(|c| c.name == "instance-ingress")
            .unwrap()
    };
    let v6_rule = |id: &str, c: &str| tcp_in(id, "sg-i", 22, Peer::CidrV6(c.into()));
    // The subnet's /64, or a wider one: every client gets in.
    for c in ["2600:1f18:0:5601::/64", "2600:1f18:0:5600::/56", "::/0"] {
        let check = v6(vec![v6_rule("sgr-v6", c)], &[]);
        assert_eq!(check.status, Pass, "{c}: {}", check.message);
        assert!(
            check.message.contains("2600:1f18:0:5601::/64, never from the client's address (Preserve Client IP is IPv4-only). sgr-v6 allows that"),
            "{}",
            check.message
        );
        // With a restriction expected, it does not hold.
        let check = v6(vec![v6_rule("sgr-v6", c)], &["203.0.113.0/24"]);
        assert_eq!(check.status, Fail, "{c}: {}", check.message);
        assert!(check.message.contains("does not hold"), "{}", check.message);
    }
    // Part of the subnet: a warning.
    let check = v6(vec![v6_rule("sgr-part", "2600:1f18:0:5601::/80")], &[]);
    assert_eq!(check.status, Warn, "{}", check.message);
    // Another network, or IPv4 rules (even the endpoint's IPv4 subnet): the
    // tunnel times out, and the fix admits the subnet's IPv6 CIDR.
    let check = v6(
        vec![
            v6_rule("sgr-other", "2001:db8::/32"),
            tcp_in("sgr-v4", "sg-i", 22, Peer::Cidr(net("10.0.1.0/24"))),
        ],
        &[],
    );
    assert_eq!(check.status, Fail, "{}", check.message);
    assert!(
        check.message.contains("IPv4 rules never match"),
        "{}",
        check.message
    );
    assert!(
        check
            .fix
            .as_deref()
            .unwrap_or_default()
            .contains("Ipv6Ranges=[{CidrIpv6=2600:1f18:0:5601::/64}]"),
        "{:?}",
        check.fix
    );
    // The endpoint's group admits it whatever the family.
    let check = v6(
        vec![tcp_in("sgr-ep", "sg-i", 22, Peer::Group("sg-e".into()))],
        &[],
    );
    assert_eq!(check.status, Pass, "{}", check.message);
}
