//! The plan over hand-made facts: what it changes, in which order, what it
//! refuses, and that doctor's checks pass on the end state it projects.

use std::net::Ipv4Addr;

use crate::access::plan::{Action, Change, PlanStatus, make_plan, project};
use crate::access::{ClientAddr, Facts, Peer, Rule, Status, evaluate, parse_cidr};
use crate::aws::ec2::{EndpointInfo, InstanceInfo};

fn net(s: &str) -> ipnet::Ipv4Net {
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

fn tcp_in(id: &str, port: i32, peer: Peer) -> Rule {
    rule(id, "sg-i", false, "tcp", port, port, peer)
}

const ALLOW: &str = "203.0.113.0/24";

/// The open configuration: PCI as given, endpoint egress to the instance
/// group, and `instance_rules` on the instance's group.
fn facts(pci: bool, instance_rules: Vec<Rule>) -> Facts {
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
        expect: vec![net(ALLOW)],
        client: ClientAddr::Offline,
        instance: Ok(InstanceInfo {
            id: "i-1".into(),
            state: "running".into(),
            private_ip: Some(Ipv4Addr::new(10, 0, 1, 10)),
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
        vpc_cidrs: vec![net("10.0.0.0/16")],
        aws_args: " --region r".into(),
    }
}

fn actions(changes: &[Change]) -> Vec<(Action, String)> {
    changes
        .iter()
        .map(|c| {
            let subject = match &c.rule {
                Some(r) if c.action == Action::RevokeIngress => r.id.clone(),
                Some(r) => format!("{}-{} {}", r.from_port, r.to_port, r.peer_text()),
                None => c.resource.clone(),
            };
            (c.action, subject)
        })
        .collect()
}

/// Doctor's checks 3 to 7 on the projected end state: none fails.
fn end_state_passes(f: &Facts, changes: &[Change]) {
    let after = project(f, changes);
    for c in evaluate(&after) {
        if (3..=7).contains(&c.id) {
            assert_ne!(c.status, Status::Fail, "{c:#?}");
        }
    }
}

use Action::{AuthorizeEgress, AuthorizeIngress, PreserveClientIp, RevokeIngress};

#[test]
fn the_open_configuration_adds_then_turns_on_then_revokes() {
    let f = facts(
        false,
        vec![tcp_in("sgr-ep", 22, Peer::Group("sg-e".into()))],
    );
    let plan = make_plan(&f);
    assert_eq!(plan.status, PlanStatus::Changes);
    assert_eq!(
        actions(&plan.changes),
        [
            (AuthorizeIngress, format!("22-22 {ALLOW}")),
            (PreserveClientIp, "eice-1".into()),
            (RevokeIngress, "sgr-ep".into()),
        ]
    );
    let add = &plan.changes[0];
    assert!(
        add.command
            .contains("authorize-security-group-ingress --group-id sg-i")
    );
    assert!(
        add.command
            .contains("\"Description\":\"added by eic-ssh restrict")
    );
    assert!(add.command.ends_with(" --region r"));
    let revoke = &plan.changes[2];
    assert_eq!(
        revoke.command,
        "aws ec2 revoke-security-group-ingress --group-id sg-i --security-group-rule-ids sgr-ep --region r"
    );
    assert!(
        revoke
            .what
            .contains("sgr-ep in sg-i: tcp/22 from security group sg-e")
    );
    assert!(
        revoke
            .undo
            .contains("\"UserIdGroupPairs\":[{\"GroupId\":\"sg-e\"}]")
    );
    assert!(revoke.why.contains("every client"));
    assert_eq!(plan.touched_groups, ["sg-i"]);
    assert!(!plan.end_state.is_empty());
    assert!(
        plan.end_state.iter().all(|c| c.status == Status::Pass),
        "{:#?}",
        plan.end_state
    );
    end_state_passes(&f, &plan.changes);
}

/// A rule's description is anyone's text: the restore command keeps it
/// exactly (as JSON escapes) but never carries a raw DEL, C1 or
/// bidirectional control to the terminal.
#[test]
fn a_hostile_rule_description_is_escaped_exactly_in_the_restore_command() {
    let hostile = "ops\u{202E}txt.exe\u{9b}31m\u{7f}\x1b]0;x\x07";
    let mut r = tcp_in("sgr-ep", 22, Peer::Group("sg-e".into()));
    r.description = Some(hostile.into());
    let plan = make_plan(&facts(false, vec![r]));
    let restore = &plan.changes[2].undo;
    assert!(
        !restore
            .chars()
            .any(|c| c.is_control() || crate::text::is_bidi_control(c)),
        "{restore:?}"
    );
    let json = restore
        .split_once("--ip-permissions '")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(json, _)| json)
        .unwrap_or_else(|| panic!("{restore}"));
    let perm: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        perm[0]["UserIdGroupPairs"][0]["Description"], hostile,
        "{json}"
    );
}

#[test]
fn a_prefix_list_leaves_the_restriction_unconfirmed() {
    let f = facts(
        true,
        vec![
            tcp_in("sgr-c", 22, Peer::Cidr(net(ALLOW))),
            tcp_in("sgr-p", 22, Peer::PrefixList("pl-0123456789abcdef0".into())),
        ],
    );
    let plan = make_plan(&f);
    assert_eq!(plan.status, PlanStatus::Unconfirmed);
    assert!(plan.changes.is_empty());
    let text = super::render::render_plan(&plan, "eic-ssh doctor", None);
    assert!(
        text.contains("Not confirmed") && text.contains("sgr-p"),
        "{text}"
    );
    assert!(!text.contains("Already restricted"), "{text}");
}

#[test]
fn a_restricted_instance_plans_nothing() {
    let f = facts(true, vec![tcp_in("sgr-c", 22, Peer::Cidr(net(ALLOW)))]);
    let plan = make_plan(&f);
    assert_eq!(plan.status, PlanStatus::AlreadyRestricted);
    assert!(plan.changes.is_empty());
    // A narrower allowed rule is kept, and the allowed network still added.
    let f = facts(
        true,
        vec![tcp_in("sgr-c", 22, Peer::Cidr(net("203.0.113.0/25")))],
    );
    let plan = make_plan(&f);
    assert_eq!(
        actions(&plan.changes),
        [(AuthorizeIngress, format!("22-22 {ALLOW}"))]
    );
}

#[test]
fn wide_rules_are_revoked_inert_ones_before_preserve_client_ip() {
    let f = facts(
        false,
        vec![
            tcp_in("sgr-vpc", 22, Peer::Cidr(net("10.0.0.0/16"))),
            tcp_in("sgr-any", 22, Peer::Cidr(net("0.0.0.0/0"))),
            // Matches nothing while PCI is off: would come alive when on.
            tcp_in("sgr-other", 22, Peer::Cidr(net("198.51.100.0/24"))),
            // Not this port, another group, a udp rule: untouched.
            tcp_in("sgr-rdp", 3389, Peer::Cidr(net("0.0.0.0/0"))),
            tcp_in("sgr-peer", 22, Peer::Group("sg-bastion".into())),
            rule(
                "sgr-udp",
                "sg-i",
                false,
                "udp",
                22,
                22,
                Peer::Cidr(net("0.0.0.0/0")),
            ),
        ],
    );
    let plan = make_plan(&f);
    assert_eq!(
        actions(&plan.changes),
        [
            (AuthorizeIngress, format!("22-22 {ALLOW}")),
            (RevokeIngress, "sgr-other".into()),
            (PreserveClientIp, "eice-1".into()),
            (RevokeIngress, "sgr-vpc".into()),
            (RevokeIngress, "sgr-any".into()),
        ]
    );
    let why: Vec<&str> = plan.changes.iter().map(|c| c.why.as_str()).collect();
    assert!(why[3].contains("covers addresses of the VPC"), "{}", why[3]);
    assert!(why[4].contains("allows every address"), "{}", why[4]);
    end_state_passes(&f, &plan.changes);
}

#[test]
fn a_port_range_is_narrowed_not_cut() {
    let f = facts(
        true,
        vec![rule(
            "sgr-range",
            "sg-i",
            false,
            "tcp",
            0,
            65535,
            Peer::Cidr(net("10.0.0.0/16")),
        )],
    );
    let plan = make_plan(&f);
    assert_eq!(plan.status, PlanStatus::Changes);
    assert_eq!(
        actions(&plan.changes),
        [
            (AuthorizeIngress, "0-21 10.0.0.0/16".into()),
            (AuthorizeIngress, "23-65535 10.0.0.0/16".into()),
            (AuthorizeIngress, format!("22-22 {ALLOW}")),
            (RevokeIngress, "sgr-range".into()),
        ]
    );
    assert!(plan.changes[0].why.contains("only tcp/22 is taken away"));
    // A range that starts at the port leaves one piece.
    let f = facts(
        true,
        vec![rule(
            "sgr-r",
            "sg-i",
            false,
            "tcp",
            22,
            25,
            Peer::Group("sg-e".into()),
        )],
    );
    let plan = make_plan(&f);
    assert_eq!(
        actions(&plan.changes)[0],
        (AuthorizeIngress, "23-25 security group sg-e".into())
    );
    end_state_passes(&f, &plan.changes);
}

#[test]
fn an_all_traffic_rule_is_never_revoked() {
    let f = facts(
        true,
        vec![rule(
            "sgr-all",
            "sg-i",
            false,
            "-1",
            -1,
            -1,
            Peer::Cidr(net("0.0.0.0/0")),
        )],
    );
    let plan = make_plan(&f);
    assert_eq!(plan.status, PlanStatus::Refused);
    assert!(plan.changes.iter().all(|c| c.action != RevokeIngress));
    assert!(
        plan.refusals[0].contains("every port and protocol"),
        "{}",
        plan.refusals[0]
    );
    assert!(plan.refusals[0].contains("--security-group-rule-ids sgr-all"));
}

#[test]
fn dual_stack_is_refused_with_the_reason() {
    let mut f = facts(
        false,
        vec![tcp_in("sgr-ep", 22, Peer::Group("sg-e".into()))],
    );
    if let Ok(eps) = f.endpoints.as_mut() {
        eps[0].ip_address_type = Some("dualstack".into());
    }
    let plan = make_plan(&f);
    assert_eq!(plan.status, PlanStatus::Refused);
    assert!(plan.changes.is_empty());
    assert!(
        plan.refusals[0].contains("eice-1 is a dualstack endpoint"),
        "{}",
        plan.refusals[0]
    );
    assert!(plan.refusals[0].contains("IPv4 endpoints only"));
}

#[test]
fn missing_egress_is_added_last() {
    let mut f = facts(
        false,
        vec![tcp_in("sgr-ep", 22, Peer::Group("sg-e".into()))],
    );
    if let Ok(rules) = f.rules.as_mut() {
        rules.retain(|r| r.id != "sgr-out");
    }
    let plan = make_plan(&f);
    let last = plan.changes.last().unwrap();
    assert_eq!(last.action, AuthorizeEgress);
    assert!(
        last.command
            .contains("authorize-security-group-egress --group-id sg-e")
    );
    assert!(
        last.undo
            .contains("revoke-security-group-egress --group-id sg-e")
    );
    end_state_passes(&f, &plan.changes);
}

#[test]
fn an_allowed_network_holding_the_endpoint_waits_for_preserve_client_ip() {
    let mut f = facts(
        false,
        vec![tcp_in("sgr-ep", 22, Peer::Group("sg-e".into()))],
    );
    f.expect = vec![net("10.0.0.0/8")];
    let plan = make_plan(&f);
    assert_eq!(
        actions(&plan.changes),
        [
            (PreserveClientIp, "eice-1".into()),
            (AuthorizeIngress, "22-22 10.0.0.0/8".into()),
            (RevokeIngress, "sgr-ep".into()),
        ]
    );
}

#[test]
fn overlapping_allowed_networks_add_one_rule_each_at_most() {
    let mut f = facts(true, vec![tcp_in("sgr-ep", 22, Peer::Group("sg-e".into()))]);
    f.expect = vec![
        net("203.0.113.0/25"),
        net(ALLOW),
        net(ALLOW),
        net("198.51.100.0/24"),
    ];
    let plan = make_plan(&f);
    assert_eq!(
        actions(&plan.changes),
        [
            (AuthorizeIngress, format!("22-22 {ALLOW}")),
            (AuthorizeIngress, "22-22 198.51.100.0/24".into()),
            (RevokeIngress, "sgr-ep".into()),
        ]
    );
    end_state_passes(&f, &plan.changes);
}
