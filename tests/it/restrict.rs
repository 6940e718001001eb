//! `eic-ssh restrict`: each test reads the plan or the report, checks the
//! simulator's state (what really changed, and in which order), and ends
//! with a real connection through the simulator, which enforces security
//! groups and Preserve Client IP.

use std::net::Ipv4Addr;

use eic_sim::{DEMO_ENDPOINT_SG, DEMO_INSTANCE_SG, Peer, World};
use serde_json::Value;

use std::time::Duration;

use crate::interactive::Pane;
use crate::support::*;

const ENDPOINT: &str = "eice-0123456789abcdef0";
const ALLOW: &str = "203.0.113.0/24";
const INSIDE: &str = "203.0.113.7";
const OUTSIDE: &str = "198.51.100.7";
/// The demo's rule that lets the endpoint's group reach tcp/22.
const ENDPOINT_RULE_22: &str = "sgr-0a000000000000022";
/// The same for tcp/3389: another port, never touched.
const ENDPOINT_RULE_3389: &str = "sgr-0a000000000003389";

/// The open configuration: Preserve Client IP off, and the instance's group
/// allowing the endpoint's group, so every client gets in. The stopped
/// demo instance, which shares the group, is left out.
fn open_world() -> World {
    let mut w = World::demo();
    w.endpoints[0].preserve_client_ip = false;
    w.instances.retain(|i| i.id != STOPPED);
    w
}

/// The write calls the simulator answered, as `Op status`.
fn writes(f: &Fixture) -> Vec<String> {
    f.sim
        .request_log()
        .into_iter()
        .filter(|e| {
            ["Authorize", "Revoke", "Modify"]
                .iter()
                .any(|p| e.op.starts_with(p))
        })
        .map(|e| format!("{} {}", e.op, e.status))
        .collect()
}

/// The world's security groups and endpoints, to compare before and after.
fn state(f: &Fixture) -> String {
    let w = f.sim.world();
    format!("{:?}\n{:?}", w.security_groups, w.endpoints)
}

/// Whether the instance's group has a rule with this id.
fn has_rule(f: &Fixture, id: &str) -> bool {
    f.sim
        .world()
        .security_groups
        .iter()
        .any(|g| g.rules.iter().any(|r| r.id == id))
}

/// A real session from a client at `from`: `Ok(())` when `echo ok` ran,
/// else the error eic-ssh printed.
async fn connect_from(f: &Fixture, from: &str) -> Result<(), String> {
    f.sim
        .set_client_public_ip(Some(from.parse::<Ipv4Addr>().unwrap()));
    let out = f.run(&[&f.target(), "--", "echo", "ok"], b"").await;
    if out.status == Some(0) && out.stdout_str() == "ok\n" {
        Ok(())
    } else {
        out.assert_status(255);
        Err(out.stderr)
    }
}

/// The writes of a full plan, in the safe order, each answered once.
const ALL_THREE_WRITES: [&str; 3] = [
    "AuthorizeSecurityGroupIngress 200",
    "ModifyInstanceConnectEndpoint 200",
    "RevokeSecurityGroupIngress 200",
];

/// `restrict INSTANCE --allow ALLOW --apply --yes`.
const APPLY: [&str; 6] = ["restrict", INSTANCE, "--allow", ALLOW, "--apply", "--yes"];

/// A shared plan applied without --shared-ok: refused (exit status 1) before
/// any write, saying nothing was changed, and the world as it was. The
/// output is returned for the plan it printed.
async fn apply_refused_as_shared(f: &Fixture) -> Output {
    let before = state(f);
    let out = f.run(&APPLY, b"").await;
    out.assert_status(1)
        .assert_stderr_contains("nothing was changed");
    assert_unchanged(f, &before);
    out
}

/// No write was sent and the groups and endpoints are as `before`.
fn assert_unchanged(f: &Fixture, before: &str) {
    assert_eq!(writes(f), Vec::<String>::new());
    assert_eq!(state(f), before);
}

/// `APPLY` and `extra` (e.g. --shared-ok): applied (exit status 0).
async fn apply_ok(f: &Fixture, extra: &[&str]) -> Output {
    let out = f.run(&[&APPLY[..], extra].concat(), b"").await;
    out.assert_success();
    out
}

fn assert_refused(r: Result<(), String>) {
    let err = r.expect_err("the connection should be refused");
    assert!(
        err.contains("Connection to the instance timed out"),
        "{err}"
    );
}

#[async_test]
async fn a_dry_run_plans_and_changes_nothing() {
    let f = Fixture::with_world(open_world()).await;
    let before = state(&f);
    let out = f.run(&["restrict", INSTANCE, "--allow", ALLOW], b"").await;
    out.assert_success();
    out.assert_stdout_contains_all([
        "Plan: 3 change(s), in this order",
        &format!("1. add inbound tcp/22 from {ALLOW} to {DEMO_INSTANCE_SG} (the instance's group)"),
        &format!("2. turn on Preserve Client IP on {ENDPOINT}"),
        &format!(
            "3. revoke {ENDPOINT_RULE_22} in {DEMO_INSTANCE_SG}: tcp/22 from security group {DEMO_ENDPOINT_SG}"
        ),
        &format!(
            "run: aws ec2 revoke-security-group-ingress --group-id {DEMO_INSTANCE_SG} --security-group-rule-ids {ENDPOINT_RULE_22} --region us-east-1"
        ),
        &format!(
            "restore: aws ec2 authorize-security-group-ingress --group-id {DEMO_INSTANCE_SG} --ip-permissions '[{{\"FromPort\":22,\"IpProtocol\":\"tcp\",\"ToPort\":22,\"UserIdGroupPairs\":[{{\"GroupId\":\"{DEMO_ENDPOINT_SG}\"}}]}}]'"
        ),
        &format!("End state, as `eic-ssh doctor {INSTANCE} --expect-cidr {ALLOW}` judges it:"),
        "PASS 5. instance-ingress",
        "Dry run: nothing was changed.",
    ])
    .assert_stdout_lacks(ENDPOINT_RULE_3389)
    .assert_stdout_lacks("FAIL");

    let out = f
        .run(&["restrict", INSTANCE, "--allow", ALLOW, "--json"], b"")
        .await;
    out.assert_success();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let plan = &json["plan"];
    assert_eq!(plan["status"], "changes", "{json:#}");
    let steps: Vec<(&str, &str)> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap(),
                c["resource"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("authorize-ingress", DEMO_INSTANCE_SG),
            ("preserve-client-ip", ENDPOINT),
            ("revoke-ingress", DEMO_INSTANCE_SG),
        ]
    );
    assert!(
        plan["end_state"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "pass"),
        "{json:#}"
    );

    // --apply without a terminal needs --yes: refused before any call.
    let calls = f.sim.request_log().len();
    let out = f
        .run(&["restrict", INSTANCE, "--allow", ALLOW, "--apply"], b"y\n")
        .await;
    out.assert_status(2);
    out.assert_stderr_contains("add --yes");
    assert_eq!(f.sim.request_log().len(), calls);

    assert_unchanged(&f, &before);
    // Still open to everyone.
    assert_eq!(connect_from(&f, OUTSIDE).await, Ok(()));
}

#[async_test]
async fn the_open_configuration_is_restricted_and_proven() {
    let f = Fixture::with_world(open_world()).await;
    assert_eq!(connect_from(&f, OUTSIDE).await, Ok(()));
    let out = apply_ok(&f, &[]).await;
    out.assert_stdout_contains_all([
        "Applying:",
        &format!("done 1. add inbound tcp/22 from {ALLOW}"),
        &format!("done 2. turn on Preserve Client IP on {ENDPOINT}"),
        &format!("done 3. revoke {ENDPOINT_RULE_22}"),
        &format!(
            "Applied. Doctor's checks now (`eic-ssh doctor {INSTANCE} --expect-cidr {ALLOW}`)"
        ),
        "PASS 5. instance-ingress",
        "0 failed",
    ]);
    // In the safe order, each applied once.
    assert_eq!(writes(&f), ALL_THREE_WRITES);
    // The revokes wait until the endpoint reports the update complete: it
    // says update-in-progress once, so restrict looks twice.
    let ops: Vec<String> = f.sim.request_log().into_iter().map(|e| e.op).collect();
    let modify = ops
        .iter()
        .position(|o| o == "ModifyInstanceConnectEndpoint")
        .unwrap();
    let revoke = ops
        .iter()
        .position(|o| o == "RevokeSecurityGroupIngress")
        .unwrap();
    let looks = ops[modify..revoke]
        .iter()
        .filter(|o| *o == "DescribeInstanceConnectEndpoints")
        .count();
    assert_eq!(looks, 2, "{ops:?}");
    let w = f.sim.world();
    assert!(w.endpoints[0].preserve_client_ip);
    assert_eq!(w.endpoints[0].state, "update-complete");
    let group = w
        .security_groups
        .iter()
        .find(|g| g.id == DEMO_INSTANCE_SG)
        .unwrap();
    let added = group
        .rules
        .iter()
        .find(|r| r.peer == Peer::Cidr(ALLOW.into()))
        .expect("the allowed network's rule");
    assert_eq!(
        (added.protocol.as_str(), added.from_port, added.to_port),
        ("tcp", 22, 22)
    );
    assert!(
        added
            .description
            .as_deref()
            .unwrap_or_default()
            .contains("eic-ssh"),
        "{added:?}"
    );
    assert!(!has_rule(&f, ENDPOINT_RULE_22));
    assert!(has_rule(&f, ENDPOINT_RULE_3389), "another port was touched");

    assert_eq!(connect_from(&f, INSIDE).await, Ok(()));
    assert_refused(connect_from(&f, OUTSIDE).await);
    let out = f
        .run(
            &[
                "doctor",
                &f.target(),
                "--expect-cidr",
                ALLOW,
                "--client-ip",
                INSIDE,
            ],
            b"",
        )
        .await;
    out.assert_status(0);
    out.assert_stdout_contains("8 passed, 0 failed");
}

#[async_test]
async fn a_second_run_plans_nothing() {
    let f = Fixture::with_world(open_world()).await;
    // The first run, as CI would: the plan, the result and doctor's verdict.
    let out = apply_ok(&f, &["--json"]).await;
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["plan"]["status"], "changes", "{json:#}");
    let results = json["result"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{json:#}");
    assert!(results.iter().all(|r| r["status"] == "done"), "{json:#}");
    assert!(
        results[0]["command"]
            .as_str()
            .unwrap()
            .starts_with("aws ec2 revoke-security-group-ingress"),
        "the undo of an added rule: {json:#}"
    );
    assert_eq!(json["exit_status"], 0);
    let verdict = json["verdict"].as_array().unwrap();
    assert_eq!(verdict.len(), 7, "{json:#}");
    assert!(verdict.iter().all(|c| c["status"] != "fail"), "{json:#}");
    let applied = writes(&f).len();
    assert_eq!(applied, 3);
    let after = state(&f);

    for args in [&APPLY[..4], &APPLY[..]] {
        let out = f.run(args, b"").await;
        out.assert_success();
        let text = out.stdout_str();
        assert!(
            text.contains(&format!(
                "Already restricted: only {ALLOW} can reach tcp/22 of {INSTANCE}. Nothing to change."
            )),
            "{text}"
        );
        assert!(!text.contains("Plan:"), "{text}");
    }
    let out = f
        .run(&["restrict", INSTANCE, "--allow", ALLOW, "--json"], b"")
        .await;
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["plan"]["status"], "already-restricted", "{json:#}");
    assert_eq!(json["plan"]["changes"], serde_json::json!([]));

    assert_eq!(writes(&f).len(), applied);
    assert_eq!(state(&f), after);
    assert_eq!(connect_from(&f, INSIDE).await, Ok(()));
}

#[async_test]
async fn a_shared_group_needs_shared_ok() {
    // The demo as it is: the stopped instance shares the instance's group.
    let mut w = World::demo();
    w.endpoints[0].preserve_client_ip = false;
    let f = Fixture::with_world(w).await;
    apply_refused_as_shared(&f)
        .await
        .assert_stderr_contains("refused")
        .assert_stdout_contains_all([
            &format!("Shared: the changed group(s) {DEMO_INSTANCE_SG} are also used by:"),
            &format!("- {STOPPED} (eni-"),
            "--apply needs --shared-ok",
        ]);
    assert_eq!(connect_from(&f, OUTSIDE).await, Ok(()));

    apply_ok(&f, &["--shared-ok"]).await;
    assert_eq!(writes(&f).len(), 3);
    assert_eq!(connect_from(&f, INSIDE).await, Ok(()));
    assert_refused(connect_from(&f, OUTSIDE).await);
}

/// Turning Preserve Client IP on changes the endpoint for every instance
/// behind it: another instance in the VPC, even with a group of its own,
/// makes the plan shared.
#[async_test]
async fn turning_preserve_client_ip_on_needs_shared_ok_when_the_endpoint_serves_others() {
    const OWN_SG: &str = "sg-0d1b2c3d4e5f60719";
    let mut w = World::demo();
    w.endpoints[0].preserve_client_ip = false;
    let mut own = w.security_group_mut(DEMO_INSTANCE_SG).unwrap().clone();
    own.id = OWN_SG.into();
    own.name = "other".into();
    w.security_groups.push(own);
    for i in w.instances.iter_mut().filter(|i| i.id == STOPPED) {
        for n in &mut i.network_interfaces {
            n.security_group_ids = vec![OWN_SG.into()];
        }
    }
    let f = Fixture::with_world(w).await;
    apply_refused_as_shared(&f)
        .await
        .assert_stdout_contains_all([
            format!(
                "Preserve Client IP is a setting of the endpoint {ENDPOINT}, which may also serve:"
            ),
            format!("- {STOPPED}"),
        ])
        .assert_stdout_lacks("changed group(s)");

    apply_ok(&f, &["--shared-ok"]).await;
    assert_eq!(connect_from(&f, INSIDE).await, Ok(()));
}

/// A dual-stack endpoint whose instances all have IPv4: the plan switches
/// it to ipv4 together with Preserve Client IP (one
/// ModifyInstanceConnectEndpoint), names the other instance it serves, needs
/// --shared-ok, and ends with doctor's checks passing and a real connection
/// from inside the allowed network only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_stack_endpoint_serving_only_ipv4_is_switched_to_ipv4_and_restricted() {
    let mut w = World::demo();
    w.endpoints[0].preserve_client_ip = false;
    w.endpoints[0].ip_address_type = "dualstack".into();
    w.endpoints[0].dualstack = true;
    let f = Fixture::with_world(w).await;
    assert_eq!(connect_from(&f, OUTSIDE).await, Ok(()));
    let out = apply_refused_as_shared(&f).await;
    out.assert_stdout_contains_all([
        &format!("2. switch {ENDPOINT} from dualstack to ipv4 and turn on Preserve Client IP"),
        &format!(
            "aws ec2 modify-instance-connect-endpoint --instance-connect-endpoint-id {ENDPOINT} --ip-address-type ipv4 --preserve-client-ip"
        ),
        "--ip-address-type dualstack --no-preserve-client-ip",
        &format!(
            "Preserve Client IP and the address type are settings of the endpoint {ENDPOINT}, which may also serve:"
        ),
        &format!("- {STOPPED}"),
    ]);

    apply_ok(&f, &["--shared-ok"])
        .await
        .assert_stdout_contains_all([
            &format!("done 2. switch {ENDPOINT} from dualstack to ipv4"),
            "PASS 5. instance-ingress",
            "PASS 7. ip-address-type",
            "0 failed",
        ]);
    assert_eq!(writes(&f), ALL_THREE_WRITES);
    let modify = f
        .sim
        .request_log()
        .into_iter()
        .find(|e| e.op == "ModifyInstanceConnectEndpoint")
        .unwrap();
    assert_eq!(
        modify.detail,
        format!("{ENDPOINT} preserveClientIp=true ipAddressType=ipv4")
    );
    let ep = &f.sim.world().endpoints[0];
    assert_eq!(
        (ep.ip_address_type.as_str(), ep.preserve_client_ip),
        ("ipv4", true)
    );
    assert!(!has_rule(&f, ENDPOINT_RULE_22));

    assert_eq!(connect_from(&f, INSIDE).await, Ok(()));
    assert_refused(connect_from(&f, OUTSIDE).await);
}

/// A dual-stack endpoint that also serves an IPv6-only instance cannot be
/// switched: refused, exit 1, naming that instance and the IAM way;
/// nothing changes and connections go on as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_stack_endpoint_serving_an_ipv6_only_instance_is_refused_naming_it() {
    const V6_INSTANCE: &str = "i-0abcdef0123456789";
    let mut w = open_world();
    w.endpoints[0].ip_address_type = "dualstack".into();
    let mut v6 = w.instances[0].clone();
    v6.id = V6_INSTANCE.into();
    v6.private_ip = None;
    v6.ipv6_address = Some("2600:1f18:1234:5601::10".into());
    v6.ssh = None;
    w.instances.push(v6);
    let f = Fixture::with_world(w).await;
    let before = state(&f);
    let out = f
        .run(
            &[
                "restrict",
                INSTANCE,
                "--allow",
                ALLOW,
                "--apply",
                "--yes",
                "--shared-ok",
            ],
            b"",
        )
        .await;
    out.assert_status(1);
    out.assert_stdout_contains_all([
        &format!(
            "{ENDPOINT} is a dualstack endpoint, and Preserve Client IP works with IPv4 endpoints only"
        ),
        "no security group rule can restrict by client network",
        &format!(
            "It cannot be switched to ipv4: it serves IPv6-only instance(s) that an ipv4 endpoint cannot reach: {V6_INSTANCE}."
        ),
        "restrict with IAM instead",
        "aws:SourceIp",
        "Nothing was changed.",
    ])
    .assert_stdout_lacks("Plan:");
    let out = f
        .run(&["restrict", INSTANCE, "--allow", ALLOW, "--json"], b"")
        .await;
    out.assert_status(1);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["plan"]["status"], "refused", "{json:#}");

    assert_unchanged(&f, &before);
    assert_eq!(connect_from(&f, OUTSIDE).await, Ok(()));
}

#[async_test]
async fn a_failure_halfway_says_what_was_done() {
    let f = Fixture::with_world(open_world()).await;
    f.sim.fail_next(
        "RevokeSecurityGroupIngress",
        403,
        "UnauthorizedOperation",
        "You are not authorized to perform this operation. User: arn:aws:iam::123456789012:user/sim is not authorized to perform: ec2:RevokeSecurityGroupIngress",
    );
    let out = f.run(&APPLY, b"").await;
    out.assert_status(255);
    out.assert_stdout_contains_all([
        &format!("done 1. add inbound tcp/22 from {ALLOW}"),
        &format!("done 2. turn on Preserve Client IP on {ENDPOINT}"),
        &format!("FAILED 3. revoke {ENDPOINT_RULE_22}"),
        &format!("Stopped at step 3: revoke {ENDPOINT_RULE_22}"),
        "error: RevokeSecurityGroupIngress failed: UnauthorizedOperation",
        &format!(
            "hint: grant ec2:RevokeSecurityGroupIngress on {DEMO_INSTANCE_SG} to the identity running eic-ssh restrict"
        ),
        "Done (these stay in place; to undo them, run these, last first):",
        &format!(
            "undo: aws ec2 modify-instance-connect-endpoint --instance-connect-endpoint-id {ENDPOINT} --no-preserve-client-ip"
        ),
        &format!(
            "undo: aws ec2 revoke-security-group-ingress --group-id {DEMO_INSTANCE_SG} --ip-permissions"
        ),
        &format!("rerun `eic-ssh restrict {INSTANCE} --allow {ALLOW}`"),
        &format!(
            "run: aws ec2 revoke-security-group-ingress --group-id {DEMO_INSTANCE_SG} --security-group-rule-ids {ENDPOINT_RULE_22}"
        ),
    ])
    .assert_stdout_lacks("Applied.");
    assert_eq!(
        writes(&f),
        [
            "AuthorizeSecurityGroupIngress 200",
            "ModifyInstanceConnectEndpoint 200",
            "RevokeSecurityGroupIngress 403",
        ]
    );
    // Exactly what the report says: added and turned on, not revoked, so
    // the endpoint's group still lets everyone in.
    assert!(f.sim.world().endpoints[0].preserve_client_ip);
    assert!(has_rule(&f, ENDPOINT_RULE_22));
    assert_eq!(connect_from(&f, OUTSIDE).await, Ok(()));

    // The rerun plans only what is left, and finishes it.
    apply_ok(&f, &[])
        .await
        .assert_stdout_contains("Plan: 1 change(s)")
        .assert_stdout_contains(format!("done 1. revoke {ENDPOINT_RULE_22}"));
    assert_eq!(connect_from(&f, INSIDE).await, Ok(()));
    assert_refused(connect_from(&f, OUTSIDE).await);
}

#[async_test]
async fn apply_asks_on_a_terminal() {
    let f = Fixture::with_world(open_world()).await;
    let before = state(&f);
    let args = format!("restrict {INSTANCE} --allow {ALLOW} --apply");
    let pane = Pane::start(&f, &args);
    pane.wait_for("Apply these 3 change(s)? [y/N]").await;
    pane.type_line("n");
    assert_eq!(pane.status(Duration::from_secs(30)).await, 1);
    assert!(
        pane.screen().contains("not confirmed: nothing was changed"),
        "{}",
        pane.screen()
    );
    assert_unchanged(&f, &before);
    drop(pane);

    let pane = Pane::start(&f, &args);
    pane.wait_for("Apply these 3 change(s)? [y/N]").await;
    pane.type_line("y");
    assert_eq!(
        pane.status(Duration::from_secs(30)).await,
        0,
        "{}",
        pane.screen()
    );
    assert_eq!(writes(&f).len(), 3);
    assert_eq!(connect_from(&f, INSIDE).await, Ok(()));
    assert_refused(connect_from(&f, OUTSIDE).await);
}

#[async_test]
async fn a_port_range_is_narrowed_and_other_ports_stay_open() {
    // All of tcp from the VPC: it admits the endpoint's address, so every
    // client, on every port.
    let mut w = open_world();
    let group = w.security_group_mut(DEMO_INSTANCE_SG).unwrap();
    group.rules = vec![eic_sim::SgRule {
        id: "sgr-0a0000000000000ff".into(),
        egress: false,
        protocol: "tcp".into(),
        from_port: 0,
        to_port: 65535,
        peer: Peer::Cidr("10.0.0.0/16".into()),
        description: Some("vpc".into()),
    }];
    let f = Fixture::with_world(w).await;
    assert_eq!(connect_from(&f, OUTSIDE).await, Ok(()));
    let out = apply_ok(&f, &[]).await;
    let text = out.stdout_str();
    assert!(
        text.contains(
            "keeps the rest of sgr-0a0000000000000ff's range (tcp/0-65535 from 10.0.0.0/16) open"
        ),
        "{text}"
    );
    let mut ranges: Vec<(i32, i32, String, Option<String>)> = f
        .sim
        .world()
        .security_groups
        .iter()
        .find(|g| g.id == DEMO_INSTANCE_SG)
        .unwrap()
        .rules
        .iter()
        .map(|r| {
            let peer = match &r.peer {
                Peer::Cidr(c) => c.clone(),
                other => format!("{other:?}"),
            };
            (r.from_port, r.to_port, peer, r.description.clone())
        })
        .collect();
    ranges.sort();
    assert_eq!(
        ranges,
        [
            (0, 21, "10.0.0.0/16".into(), Some("vpc".into())),
            (
                22,
                22,
                ALLOW.into(),
                Some(eic_ssh::access::plan::DESCRIPTION.into())
            ),
            (23, 65535, "10.0.0.0/16".into(), Some("vpc".into())),
        ]
    );
    assert_eq!(connect_from(&f, INSIDE).await, Ok(()));
    assert_refused(connect_from(&f, OUTSIDE).await);
}

/// The dry run's "To apply" line is a command that applies the plan: with
/// --shared-ok when the plan needs it. Beside it, whether this machine's
/// public address is inside --allow (or it would shut itself out).
#[async_test]
async fn the_dry_run_says_how_to_apply_it_and_whether_this_machine_stays_in() {
    // The demo as it is: the stopped instance shares the instance's group.
    let mut w = World::demo();
    w.endpoints[0].preserve_client_ip = false;
    let f = Fixture::with_world(w).await;
    // A "what is my IP" service on loopback, answering INSIDE.
    let checkip = checkip_service().await;
    let dry_run = |allow: &'static str, extra: &'static [&'static str]| {
        let f = &f;
        let mut cmd = f.command();
        cmd.env("EIC_SSH_CHECKIP_URL", &checkip);
        let mut args = vec!["restrict", INSTANCE, "--allow", allow];
        args.extend_from_slice(extra);
        async move {
            let out = f.run_cmd(cmd, &args, b"").await;
            out.assert_success();
            out.stdout_str()
        }
    };
    let text = dry_run(ALLOW, &[]).await;
    let apply = format!("eic-ssh restrict {INSTANCE} --allow {ALLOW} --apply --shared-ok");
    assert!(
        text.contains(&format!(
            "This machine's public address, {INSIDE}, is inside {ALLOW}: it can still connect afterwards."
        )),
        "{text}"
    );
    assert!(
        text.ends_with(&format!(
            "Dry run: nothing was changed. To apply: {apply}\n"
        )),
        "{text}"
    );
    // Outside, given or discovered; unknown; not checked.
    let text = dry_run("198.51.100.0/24", &[]).await;
    assert!(
        text.contains(&format!(
            "Warning: this machine's public address, {INSIDE}, is outside 198.51.100.0/24: once applied, it can no longer connect through the endpoint."
        )),
        "{text}"
    );
    let text = dry_run(ALLOW, &["--client-ip", OUTSIDE]).await;
    assert!(
        text.contains(&format!("{OUTSIDE}, is outside {ALLOW}")),
        "{text}"
    );
    let text = dry_run(ALLOW, &["--offline"]).await;
    assert!(text.contains("Offline: not checked whether"), "{text}");
    assert!(
        text.contains(&format!("--allow {ALLOW} --offline --apply --shared-ok")),
        "{text}"
    );
    let out = f.run(&["restrict", INSTANCE, "--allow", ALLOW], b"").await;
    assert!(
        out.stdout_str()
            .contains("Could not learn this machine's public address"),
        "{}",
        out.stdout_str()
    );

    // The printed command, confirmed with --yes, applies the plan.
    let mut words: Vec<&str> = apply.split(' ').skip(1).collect();
    words.push("--yes");
    let out = f.run(&words, b"").await;
    out.assert_status(0);
    assert_eq!(writes(&f).len(), 3);
    assert_eq!(connect_from(&f, INSIDE).await, Ok(()));
}
