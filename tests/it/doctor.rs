//! `eic-ssh doctor`: one scenario per test, each asserting the exact
//! checklist verdicts (from `--json`), a few key phrases of the human
//! output, the exit status, and — where it matters — that a real
//! connection through the simulator (which enforces security groups)
//! agrees with the verdict.

use std::net::Ipv4Addr;

use eic_sim::{DEMO_ENDPOINT_SG, DEMO_INSTANCE_SG, NetworkInterface, Peer, SgRule, World};
use serde_json::Value;

use crate::support::*;

const ENDPOINT: &str = "eice-0123456789abcdef0";
const SEED: &str = "203.0.113.0/24";
const INSIDE: &str = "203.0.113.7";
const OUTSIDE: &str = "198.51.100.9";
/// The seed configuration's only inbound rule on the instance.
const SEED_RULE: &str = "sgr-0c0000000000000a1";

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// The seed configuration: Preserve Client IP on (as in the demo), the
/// instance's group allows tcp/22 from 203.0.113.0/24 only.
fn seed_world() -> World {
    let mut w = World::demo();
    w.security_group_mut(DEMO_INSTANCE_SG).unwrap().rules =
        vec![SgRule::tcp_in(SEED_RULE, 22, Peer::Cidr(SEED.into()))];
    w
}

fn add_instance_rule(w: &mut World, rule: SgRule) {
    w.security_group_mut(DEMO_INSTANCE_SG)
        .unwrap()
        .rules
        .push(rule);
}

/// One check of the `--json` answer.
#[derive(Debug)]
struct Verdict {
    status: String,
    message: String,
    fix: String,
}

/// Runs `eic-ssh doctor <args> --json` and returns the exit status and the
/// checks, by id (index 0 is check 1).
async fn doctor_json(f: &Fixture, args: &[&str]) -> (Option<i32>, Vec<Verdict>) {
    let mut all = vec!["doctor"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = f.run(&all, b"").await;
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json printed no JSON ({e}):\n{}\nstderr: {}",
            out.stdout_str(),
            out.stderr
        )
    });
    let checks = json.as_array().expect("an array of checks");
    let verdicts: Vec<Verdict> = checks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            assert_eq!(c["id"].as_u64(), Some(i as u64 + 1), "{c}");
            assert!(c["name"].is_string(), "{c}");
            let status = c["status"].as_str().unwrap().to_owned();
            assert!(
                ["pass", "fail", "warn", "skip"].contains(&status.as_str()),
                "{c}"
            );
            Verdict {
                status,
                message: c["message"].as_str().unwrap().to_owned(),
                fix: c["fix"].as_str().unwrap_or_default().to_owned(),
            }
        })
        .collect();
    assert_eq!(verdicts.len(), 9, "{json:#}");
    (out.status, verdicts)
}

fn statuses(v: &[Verdict]) -> Vec<&str> {
    v.iter().map(|c| c.status.as_str()).collect()
}

/// Runs `doctor --json` and asserts the first eight verdicts, in order,
/// and the exit status; the ninth, the clock, agrees with the simulator's
/// (both are this machine's). Returns the checks for the scenario's own
/// assertions.
async fn checklist(f: &Fixture, args: &[&str], expect: [&str; 8], exit: i32) -> Vec<Verdict> {
    let (status, v) = doctor_json(f, args).await;
    assert_eq!(statuses(&v)[..8], expect, "{v:#?}");
    assert_eq!(v[8].status, "pass", "{:#?}", v[8]);
    assert_eq!(status, Some(exit), "{v:#?}");
    v
}

/// `checklist` for `doctor TARGET --client-ip CLIENT --expect-cidr SEED
/// --connect` with this machine really at `client`.
async fn checklist_from(
    f: &Fixture,
    target: &str,
    client: &str,
    expect: [&str; 8],
    exit: i32,
) -> Vec<Verdict> {
    f.sim.set_client_public_ip(Some(ip(client)));
    let args = [
        target,
        "--client-ip",
        client,
        "--expect-cidr",
        SEED,
        "--connect",
    ];
    checklist(f, &args, expect, exit).await
}

/// The seed configuration done right: every check passes, and both
/// doctor's own connection and a real session succeed.
#[async_test]
async fn the_seed_configuration_done_right_passes_and_connects() {
    let f = Fixture::with_world(seed_world()).await;
    let target = f.target();
    let v = checklist_from(
        &f,
        &target,
        INSIDE,
        [
            "pass", "pass", "pass", "pass", "pass", "pass", "pass", "pass",
        ],
        0,
    )
    .await;
    assert!(v[5].message.contains(SEED_RULE), "{}", v[5].message);
    assert!(v[7].message.contains("SSH-2.0-"), "{}", v[7].message);

    let human = [
        "doctor",
        &target,
        "--client-ip",
        INSIDE,
        "--expect-cidr",
        SEED,
    ];
    let out = f.run(&human, b"").await;
    out.assert_success();
    let text = out.stdout_str();
    assert!(
        text.contains("Every allowed client source is inside 203.0.113.0/24"),
        "{text}"
    );
    assert!(
        text.contains(&format!("This machine ({INSIDE}, given) is allowed")),
        "{text}"
    );
    assert!(text.contains("8 passed, 0 failed"), "{text}");
    assert!(
        text.contains("PASS 9. clock             this machine's clock"),
        "{text}"
    );

    let out = f.run(&[&target, "--", "echo", "ok"], b"").await;
    assert_eq!(out.stdout_str(), "ok\n", "{}", out.stderr);
    out.assert_status(0);
}

/// The same configuration seen from outside the allowed network: check 6
/// fails, and the simulator really refuses the connection.
#[async_test]
async fn a_client_outside_the_restriction_is_told_and_refused() {
    let f = Fixture::with_world(seed_world()).await;
    let target = f.target();
    let v = checklist_from(
        &f,
        &target,
        OUTSIDE,
        [
            "pass", "pass", "pass", "pass", "pass", "fail", "pass", "fail",
        ],
        1,
    )
    .await;
    assert!(
        v[5].message
            .contains(&format!("This machine ({OUTSIDE}, given) will be refused")),
        "{}",
        v[5].message
    );
    assert!(v[5].fix.contains("inside 203.0.113.0/24"), "{}", v[5].fix);
    assert!(
        v[7].message.contains("closed it after")
            && v[7]
                .message
                .contains("Connection to the instance timed out"),
        "{}",
        v[7].message
    );

    let out = f.run(&[&target, "--", "echo", "ok"], b"").await;
    out.assert_status(255);
    assert!(out.stdout.is_empty());
    out.assert_stderr_contains(
        "the tunnel was closed by the endpoint (code 1011): Connection to the instance timed out",
    );
    out.assert_stderr_contains(format!("`eic-ssh doctor {INSTANCE}`"));
    let log = f.sim.request_log();
    assert!(
        log.iter()
            .any(|e| e.op == "OpenTunnel" && e.detail.contains("from 198.51.100.9")),
        "{log:?}"
    );
}

/// Preserve Client IP off with a CIDR-only rule: the instance never sees
/// client addresses, so nothing gets in.
#[async_test]
async fn preserve_client_ip_off_with_a_client_cidr_fails_and_explains() {
    let mut w = seed_world();
    w.endpoints[0].preserve_client_ip = false;
    let f = Fixture::with_world(w).await;
    let v = checklist_from(
        &f,
        INSTANCE,
        INSIDE,
        [
            "pass", "pass", "pass", "pass", "fail", "skip", "pass", "fail",
        ],
        1,
    )
    .await;
    let m = &v[4].message;
    assert!(
        m.contains("Preserve Client IP is off")
            && m.contains("10.0.1.0/24")
            && m.contains(SEED_RULE)
            && m.contains("never match"),
        "{m}"
    );
    assert!(
        v[4].fix.starts_with(&format!(
            "aws ec2 modify-instance-connect-endpoint --instance-connect-endpoint-id {ENDPOINT} --preserve-client-ip --region us-east-1"
        )),
        "{}",
        v[4].fix
    );

    let out = f.run(&["doctor", INSTANCE, "--offline"], b"").await;
    out.assert_status(1);
    out.assert_stdout_contains("aws:SourceIp");
}

/// Allowing the endpoint's security group next to the CIDR lets everyone
/// in: the restriction is defeated, and the rule is named.
#[async_test]
async fn the_endpoint_group_next_to_the_cidr_defeats_the_restriction() {
    const EP_RULE: &str = "sgr-0c0000000000000e1";
    let mut w = seed_world();
    add_instance_rule(
        &mut w,
        SgRule::tcp_in(EP_RULE, 22, Peer::Group(DEMO_ENDPOINT_SG.into())),
    );
    let f = Fixture::with_world(w).await;
    // Even a client outside the CIDR gets in, which is the problem.
    f.sim.set_client_public_ip(Some(ip(OUTSIDE)));
    let v = checklist(
        &f,
        &[INSTANCE, "--client-ip", OUTSIDE, "--expect-cidr", SEED],
        [
            "pass", "pass", "pass", "pass", "fail", "pass", "pass", "skip",
        ],
        1,
    )
    .await;
    assert!(
        v[4].message.contains(&format!(
            "{EP_RULE} allows the endpoint's security group {DEMO_ENDPOINT_SG}"
        )),
        "{}",
        v[4].message
    );
    assert!(
        !v[4].message.contains(&format!("{SEED_RULE} ")),
        "{}",
        v[4].message
    );
    assert_eq!(
        v[4].fix,
        format!(
            "aws ec2 revoke-security-group-ingress --group-id {DEMO_INSTANCE_SG} --security-group-rule-ids {EP_RULE} --region us-east-1"
        )
    );
    let out = f.run(&[&f.target(), "--", "echo", "ok"], b"").await;
    assert_eq!(out.stdout_str(), "ok\n", "{}", out.stderr);
}

/// A change to the seed configuration and what doctor must say of it,
/// from inside the CIDR: the eight verdicts, the exit status, and the
/// check (index) whose message holds `says` and whose fix holds `fix`.
struct Scenario {
    what: &'static str,
    change: fn(&mut World),
    verdicts: [&'static str; 8],
    exit: i32,
    check: usize,
    says: &'static [&'static str],
    fix: &'static str,
    /// Whether a real session still gets through.
    connects: bool,
}

const OPEN: &str = "sgr-0c00000000000000f";
const EP_IN: &str = "sgr-0c00000000000e443";

const SCENARIOS: &[Scenario] = &[
    Scenario {
        // 0.0.0.0/0 (here as protocol -1, all traffic) allows every address.
        what: "an open rule fails the restriction",
        change: |w| add_instance_rule(w, SgRule::all(OPEN, false, Peer::Cidr("0.0.0.0/0".into()))),
        verdicts: [
            "pass", "pass", "pass", "pass", "fail", "pass", "pass", "skip",
        ],
        exit: 1,
        check: 4,
        says: &["sgr-0c00000000000000f 0.0.0.0/0 allows every address"],
        fix: "--security-group-rule-ids sgr-0c00000000000000f",
        connects: true,
    },
    Scenario {
        // The endpoint may not send to port 22: every tunnel times out.
        what: "endpoint egress without port 22 fails",
        change: |w| {
            w.security_group_mut(DEMO_ENDPOINT_SG)
                .unwrap()
                .rules
                .retain(|r| !(r.egress && r.from_port == 22));
        },
        verdicts: [
            "pass", "pass", "fail", "pass", "pass", "pass", "pass", "skip",
        ],
        exit: 1,
        check: 2,
        says: &["allow no outbound tcp/22"],
        fix: "aws ec2 authorize-security-group-egress --group-id sg-0123456789abcdef0 --ip-permissions 'IpProtocol=tcp,FromPort=22,ToPort=22,UserIdGroupPairs=[{GroupId=sg-0a1b2c3d4e5f60718}]' --region us-east-1",
        connects: false,
    },
    Scenario {
        // Inbound rules on the endpoint's group restrict nothing: a
        // warning, and warnings do not fail the run.
        what: "endpoint inbound rules are a warning",
        change: |w| {
            w.security_group_mut(DEMO_ENDPOINT_SG)
                .unwrap()
                .rules
                .push(SgRule::tcp_in(EP_IN, 443, Peer::Cidr(SEED.into())));
        },
        verdicts: [
            "pass", "pass", "pass", "warn", "pass", "pass", "pass", "skip",
        ],
        exit: 0,
        check: 3,
        says: &[EP_IN, "restrict nothing"],
        fix: "",
        connects: true,
    },
];

/// Each scenario over one fixture, its world reset to the seed's and
/// changed: the verdicts, the message and fix, and whether a real session
/// agrees (a blocked one ends 255, pointing at doctor).
#[async_test]
async fn security_group_scenarios_get_their_verdicts_and_fixes() {
    let f = Fixture::with_world(seed_world()).await;
    f.sim.set_client_public_ip(Some(ip(INSIDE)));
    for s in SCENARIOS {
        f.sim.set_world(|w| {
            *w = seed_world();
            (s.change)(w);
            // The instance is the fixture's sshd, as Sshd::start made it.
            let i = w.instances.iter_mut().find(|i| i.id == INSTANCE).unwrap();
            i.ssh = Some(f.sshd.addr);
        });
        let v = checklist(
            &f,
            &[INSTANCE, "--client-ip", INSIDE, "--expect-cidr", SEED],
            s.verdicts,
            s.exit,
        )
        .await;
        let check = &v[s.check];
        for phrase in s.says {
            assert!(check.message.contains(phrase), "{}: {check:?}", s.what);
        }
        assert!(check.fix.contains(s.fix), "{}: {check:?}", s.what);
        let out = f
            .run(&["--no-cache", &f.target(), "--", "echo", "ok"], b"")
            .await;
        match s.connects {
            true => out.assert_stdout("ok\n"),
            false => out
                .assert_status(255)
                .assert_stderr_contains("eic-ssh doctor"),
        };
    }
}

/// No endpoint in the instance's VPC: the command that creates one.
#[async_test]
async fn no_endpoint_in_the_vpc_fails_with_the_create_command() {
    let f = Fixture::new().await;
    let v = checklist(
        &f,
        &[NO_ENDPOINT, "--offline", "--connect"],
        [
            "pass", "fail", "skip", "skip", "skip", "skip", "skip", "skip",
        ],
        1,
    )
    .await;
    assert!(v[1].message.contains("vpc-empty"), "{}", v[1].message);
    assert_eq!(
        v[1].fix,
        "aws ec2 create-instance-connect-endpoint --subnet-id subnet-empty --preserve-client-ip --region us-east-1"
    );
    let out = f.run(&["doctor", NO_ENDPOINT, "--offline"], b"").await;
    assert!(
        out.stdout_str()
            .contains("fix: aws ec2 create-instance-connect-endpoint --subnet-id subnet-empty"),
        "{}",
        out.stdout_str()
    );
}

/// A stopped instance: the state is named, with the command to start it.
#[async_test]
async fn a_stopped_instance_is_named_with_its_state() {
    let f = Fixture::new().await;
    let v = checklist(
        &f,
        &[STOPPED, "--offline", "--connect"],
        [
            "fail", "pass", "pass", "pass", "pass", "skip", "pass", "skip",
        ],
        1,
    )
    .await;
    assert!(
        v[0].message
            .contains(&format!("{STOPPED} is stopped, not running")),
        "{}",
        v[0].message
    );
    assert_eq!(
        v[0].fix,
        format!("aws ec2 start-instances --instance-ids {STOPPED} --region us-east-1")
    );

    let out = f
        .run(
            &["doctor", "i-0aaaaaaaaaaaaaaaa", "--offline", "--json"],
            b"",
        )
        .await;
    out.assert_status(1);
    assert!(
        out.stdout_str()
            .contains("was not found in region us-east-1")
    );
}

/// A group on a second network interface guards only that interface's own
/// addresses: the tunnel reaches the primary private IP, so only the
/// primary interface's groups count, for doctor and for the simulator
/// alike (the API may list the interfaces in any order).
#[async_test]
async fn a_rule_on_a_secondary_interface_admits_nothing() {
    const SECOND_SG: &str = "sg-0c1b2c3d4e5f60718";
    const SECOND_RULE: &str = "sgr-0c0000000000000b2";
    let mut w = seed_world();
    let mut second = w.security_group_mut(DEMO_INSTANCE_SG).unwrap().clone();
    second.id = SECOND_SG.into();
    second.name = "partners".into();
    second.rules = vec![SgRule::tcp_in(
        SECOND_RULE,
        22,
        Peer::Cidr("198.51.100.0/24".into()),
    )];
    w.security_groups.push(second);
    w.instances[0].network_interfaces.push(NetworkInterface {
        id: "eni-0c0000000000000b2".into(),
        security_group_ids: vec![SECOND_SG.into()],
    });
    let f = Fixture::with_world(w).await;
    f.sim.set_client_public_ip(Some(ip(OUTSIDE)));

    // From outside the seed network, the second interface's rule does not
    // let this machine in: doctor says so, and so does a real connection.
    let (status, v) = doctor_json(&f, &[INSTANCE, "--client-ip", OUTSIDE]).await;
    let all = format!("{v:#?}");
    assert_ne!(status, Some(0), "{all}");
    assert!(!all.contains(SECOND_RULE), "{all}");
    assert!(v.iter().any(|c| c.status == "fail"), "{all}");
    let out = f
        .run(
            &[&f.target(), "--connect-timeout", "3", "--", "echo", "ok"],
            b"",
        )
        .await;
    assert_ne!(out.status, Some(0), "{}", out.stderr);

    // From inside, the primary interface's seed rule is what admits it.
    let v = checklist_from(
        &f,
        INSTANCE,
        INSIDE,
        [
            "pass", "pass", "pass", "pass", "pass", "pass", "pass", "pass",
        ],
        0,
    )
    .await;
    assert!(v[4].message.contains(SEED_RULE), "{}", v[4].message);
    assert!(!v[4].message.contains(SECOND_RULE), "{}", v[4].message);
}

/// Without --client-ip the address is discovered; a failed discovery is a
/// warning, never a crash.
#[async_test]
async fn the_client_address_is_discovered_and_a_failure_only_warns() {
    let f = Fixture::with_world(seed_world()).await;
    let url = checkip_service().await;
    let run = |url: String| {
        let mut cmd = f.command();
        cmd.env("EIC_SSH_CHECKIP_URL", url);
        f.run_cmd(
            cmd,
            &["doctor", INSTANCE, "--expect-cidr", SEED, "--json"],
            b"",
        )
    };
    let out = run(url).await;
    out.assert_status(0);
    assert!(
        out.stdout_str()
            .contains("This machine (203.0.113.7, discovered) is allowed"),
        "{}",
        out.stdout_str()
    );

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let out = run(dead).await;
    out.assert_success();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[5]["status"], "warn", "{json:#}");
    assert!(
        json[5]["message"]
            .as_str()
            .unwrap()
            .contains("Could not discover this machine's public address"),
        "{json:#}"
    );
}
