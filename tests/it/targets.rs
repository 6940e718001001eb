//! Target expressions: an instance by Name tag, private IP, private DNS
//! name or tag; ambiguity and no match; `ls`; the cold connection's two
//! round trips, and a warm one by name in one.

use std::time::Duration;

use eic_sim::sshd::Sshd;
use eic_sim::{LogEntry, World};

use crate::support::*;

/// The demo world with the stopped `web-1` running too: `web-1` is
/// ambiguous.
pub(crate) fn twins() -> World {
    let mut w = World::demo();
    w.instances[1].state = "running".into();
    w
}

/// How many round trips `log` took one after the other: the longest chain
/// of requests each of which started only after the one before it had
/// been answered. Requests whose intervals overlap ran side by side.
pub(crate) fn round_trips(log: &[LogEntry]) -> usize {
    let mut by_start: Vec<&LogEntry> = log.iter().collect();
    by_start.sort_by_key(|e| e.started);
    let mut depth: Vec<usize> = Vec::new();
    for (i, e) in by_start.iter().enumerate() {
        let before = (0..i)
            .filter(|&j| by_start[j].finished <= e.started)
            .map(|j| depth[j])
            .max()
            .unwrap_or(0);
        depth.push(before + 1);
    }
    depth.into_iter().max().unwrap_or(0)
}

#[async_test]
async fn connects_by_name_tag_private_ip_private_dns_name_and_tag() {
    let f = Fixture::new().await;
    let user = f.user();
    // web-1 is also the Name of a stopped instance: a name never picks it.
    for expr in [
        "web-1",
        "10.0.1.10",
        "ip-10-0-1-10.ec2.internal",
        "tag:Role=web",
    ] {
        f.run(
            &[
                "--no-cache",
                &format!("{user}@{expr}"),
                "--",
                "echo",
                "via",
                expr,
            ],
            b"",
        )
        .await
        .assert_success()
        .assert_stdout(&format!("via {expr}\n"));
    }
    // The host key is recorded under the instance ID, whatever the target.
    let known = std::fs::read_to_string(f.known_hosts()).unwrap();
    assert_eq!(known.lines().count(), 1, "{known}");
    assert!(
        known.starts_with(&format!("{INSTANCE} ssh-ed25519 ")),
        "{known}"
    );
}

#[async_test]
async fn an_ambiguous_name_without_a_terminal_lists_the_matches_and_exits_2() {
    let f = Fixture::with_world(twins()).await;
    for extra in [&[][..], &["--no-pick"][..]] {
        let mut args = extra.to_vec();
        args.extend(["web-1", "--", "true"]);
        f.run(&args, b"")
            .await
            .assert_status(2)
            .assert_stderr_contains("eic-ssh: Name tag 'web-1' matches 2 instances:")
            .assert_stderr_contains(INSTANCE)
            .assert_stderr_contains(STOPPED)
            .assert_stderr_contains("10.0.1.11")
            .assert_stderr_contains("us-east-1a")
            .assert_stderr_contains("hint: name one by its ID");
    }
    // Nothing was pushed or opened.
    f.assert_nothing_pushed_or_opened();
}

#[async_test]
async fn no_match_says_what_was_searched_where() {
    let f = Fixture::new().await;
    f.run(&["tag:Role=db", "--", "true"], b"")
        .await
        .assert_status(255)
        .assert_stderr_contains(
            "no running instance matches tag Role=db in region us-east-1 (environment credentials)",
        );
    // A stopped instance is found by its ID, and the error names its state.
    f.run(&[STOPPED, "--", "true"], b"")
        .await
        .assert_status(255)
        .assert_stderr_contains(format!("instance {STOPPED} is stopped, not running"));
    // A malformed ID or address is refused before any call.
    let before = f.ops().len();
    for bad in ["i-0123", "10.0.1.300"] {
        f.run(&[bad, "--", "true"], b"")
            .await
            .assert_status(2)
            .assert_stderr_contains(format!("'{bad}'"));
    }
    assert_eq!(f.ops().len(), before);
}

#[async_test]
async fn ls_json_lists_instances_with_their_endpoints() {
    // A terminated instance is never listed.
    let mut world = World::demo();
    let mut gone = world.instances[0].clone();
    gone.id = "i-0000000000000dea1".into();
    gone.state = "terminated".into();
    world.instances.push(gone);
    let f = Fixture::with_world(world).await;
    let out = f.run(&["ls", "--json"], b"").await;
    out.assert_success()
        .assert_stdout_lacks("i-0000000000000dea1");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let row = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(
        row(INSTANCE),
        serde_json::json!({
            "id": INSTANCE,
            "name": "web-1",
            "state": "running",
            "private_ip": "10.0.1.10",
            "availability_zone": "us-east-1a",
            "endpoint": "eice-0123456789abcdef0",
            "no_endpoint_reason": null,
        })
    );
    assert_eq!(row(STOPPED)["state"], "stopped");
    let isolated = row(NO_ENDPOINT);
    assert_eq!(isolated["name"], "isolated");
    assert_eq!(isolated["endpoint"], serde_json::Value::Null);
    assert_eq!(isolated["no_endpoint_reason"], "none in vpc-empty");

    // A target narrows the list (to instances in any state but
    // terminated, as without one); the table says the same.
    let out = f.run(&["ls", "web-1", "isolated"], b"").await;
    out.assert_success();
    let text = out.stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("ID") && lines[0].ends_with("ENDPOINT"),
        "{text}"
    );
    assert!(
        lines[1].contains(INSTANCE) && lines[1].ends_with("eice-0123456789abcdef0"),
        "{text}"
    );
    assert!(
        lines[2].contains(STOPPED) && lines[2].contains("stopped"),
        "{text}"
    );
    assert!(
        lines[3].contains(NO_ENDPOINT) && lines[3].ends_with("no endpoint (none in vpc-empty)"),
        "{text}"
    );
    // One DescribeInstances per target, one endpoint listing.
    let log = f.sim.request_log();
    let count = |op: &str| log.iter().filter(|e| e.op == op).count();
    assert_eq!(count("DescribeInstances"), 3, "ls, then one per target");
    assert_eq!(count("DescribeInstanceConnectEndpoints"), 2);
}

/// The one request of `op` in `log`.
fn only(log: &[LogEntry], op: &str) -> LogEntry {
    let all: Vec<_> = log.iter().filter(|e| e.op == op).collect();
    let ops: Vec<&str> = log.iter().map(|e| e.op.as_str()).collect();
    assert_eq!(all.len(), 1, "{op}: {ops:?}");
    all[0].clone()
}

#[async_test]
async fn a_cold_connection_is_two_sequential_round_trips() {
    let f = Fixture::new().await;
    // Each answer takes a second: requests started together overlap by
    // far, whatever the load on the machine.
    f.sim.set_api_latency(Duration::from_secs(1));
    f.sim.set_handshake_latency(Duration::from_secs(1));
    f.run(&[&f.target(), "--", "true"], b"")
        .await
        .assert_success();
    let log = f.sim.request_log();
    let find = |op: &str| only(&log, op);
    let instance = find("DescribeInstances");
    let endpoints = find("DescribeInstanceConnectEndpoints");
    let push = find("SendSSHPublicKey");
    let console = find("GetConsoleOutput");
    let tunnel = find("OpenTunnel");
    // Round trip 1: the lookups, the push and the console all overlap.
    for e in [&endpoints, &push, &console] {
        assert!(
            e.started < instance.finished && instance.started < e.finished,
            "{} does not overlap DescribeInstances",
            e.op
        );
    }
    // Round trip 2: the websocket, once the lookups answered.
    assert!(tunnel.started >= instance.finished && tunnel.started >= endpoints.finished);
    // So two in all, not three.
    assert_eq!(round_trips(&log), 2, "{log:#?}");
}

/// A second connection by Name starts the push and the tunnel to the
/// instance that name found last time beside the lookup: one round trip,
/// as by ID, and no endpoint lookup.
#[async_test]
async fn a_warm_connection_by_name_is_one_round_trip() {
    let f = Fixture::new().await;
    let target = format!("{}@web-1", f.user());
    f.run(&[&target, "--", "true"], b"").await.assert_success();

    f.sim.set_api_latency(Duration::from_secs(1));
    f.sim.set_handshake_latency(Duration::from_secs(1));
    let before = f.sim.request_log().len();
    f.run(&[&target, "--", "echo", "warm"], b"")
        .await
        .assert_success()
        .assert_stdout("warm\n");
    let log: Vec<_> = f.sim.request_log()[before..].to_vec();
    let ops: Vec<&str> = log.iter().map(|e| e.op.as_str()).collect();
    let find = |op: &str| only(&log, op);
    let instance = find("DescribeInstances");
    let push = find("SendSSHPublicKey");
    let tunnel = find("OpenTunnel");
    assert!(
        !ops.contains(&"DescribeInstanceConnectEndpoints"),
        "{ops:?}"
    );
    // The push and the tunnel overlap the lookup: one round trip, not two.
    assert_eq!(round_trips(&log), 1, "{log:#?}");
    for e in [&push, &tunnel] {
        assert!(
            e.started < instance.finished && instance.started < e.finished,
            "{} does not overlap DescribeInstances: {ops:?}",
            e.op
        );
    }
}

/// When the name now belongs to another instance, the early start on the
/// remembered one is dropped and the connection reaches the instance the
/// lookup found.
#[async_test]
async fn a_name_that_moved_reaches_the_instance_that_has_it_now() {
    let mut world = World::demo();
    let second = "i-0123456789abcdef1";
    world.instances.push(eic_sim::Instance {
        id: second.into(),
        private_ip: Some("10.0.1.12".into()),
        tags: vec![("Name".into(), "web-new".into())],
        ..world.instances[0].clone()
    });
    let f = Fixture::with_world(world).await;
    let sshd2 = Sshd::start(&f.sim, second).await.unwrap();
    let target = format!("{}@web-1", f.user());
    let where_ = |out: &Output| {
        out.stdout_str()
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or("")
            .to_owned()
    };
    let out = f
        .run(&[&target, "--", "echo", "$SSH_CONNECTION"], b"")
        .await;
    out.assert_success();
    assert_eq!(
        where_(&out),
        f.sshd.addr.port().to_string(),
        "{}",
        out.stdout_str()
    );

    // web-1 moves to the second instance.
    f.sim.set_world(|w| {
        for i in &mut w.instances {
            let name = if i.id == second { "web-1" } else { "web-old" };
            for (k, v) in &mut i.tags {
                if k == "Name" {
                    *v = name.into();
                }
            }
        }
    });
    let out = f
        .run(&["-v", &target, "--", "echo", "$SSH_CONNECTION"], b"")
        .await;
    out.assert_success()
        .assert_stderr_contains(format!("the target is now {second}, not {INSTANCE}"));
    assert_eq!(where_(&out), sshd2.addr.port().to_string(), "{out}");
}

/// The demo world with the stopped instance named `db-1`.
fn stopped_db() -> World {
    let mut w = World::demo();
    w.instances[1].tags = vec![("Name".into(), "db-1".into())];
    w
}

/// A stopped instance asked for by Name, tag or ID, to connect, to `exec`
/// or to `ls`: its name, ID and state, and the command that starts it, in
/// the region and as the profile in use.
#[async_test]
async fn a_stopped_instance_is_named_with_the_command_that_starts_it() {
    let f = Fixture::with_world(stopped_db()).await;
    let creds = f.sim.credentials();
    std::fs::write(
        f.home.aws_credentials(),
        format!(
            "[ops]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            creds.access_key_id, creds.secret_access_key
        ),
    )
    .unwrap();
    let said = format!("eic-ssh: db-1 ({STOPPED}) is stopped, not running\n");
    let start = format!(
        "eic-ssh: hint: start it with: aws ec2 start-instances --instance-ids {STOPPED} --region us-east-1"
    );
    for args in [
        &["db-1", "--", "true"][..],
        &["tag:Name=db-1", "--", "true"],
        &["exec", "db-1", "--", "true"],
        &["proxy", "--no-push", "db-1", "22"],
    ] {
        f.run(args, b"")
            .await
            .assert_status(255)
            .assert_stderr(&format!("{said}{start}\n"));
    }
    // By ID, the same advice; as a profile, the command says which.
    f.run(
        &[
            "--profile",
            "ops",
            "--region",
            "us-east-1",
            STOPPED,
            "--",
            "true",
        ],
        b"",
    )
    .await
    .assert_stderr_contains(format!(
        "eic-ssh: instance {STOPPED} is stopped, not running\n\
         eic-ssh: hint: start it with: aws ec2 start-instances --instance-ids {STOPPED} --region us-east-1 --profile ops\n"
    ));
    // ls lists it, and says the same on stderr.
    let out = f.run(&["ls", "db-1"], b"").await;
    out.assert_success()
        .assert_stderr(&format!("{said}{start}\n"));
    let text = out.stdout_str();
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.contains(STOPPED) && l.contains("stopped")),
        "{text}"
    );
    f.run(&["-q", "ls", "db-1"], b"")
        .await
        .assert_success()
        .assert_stderr("");
}

#[async_test]
async fn several_stopped_matches_are_all_named() {
    let mut world = stopped_db();
    let mut twin = world.instances[1].clone();
    twin.id = "i-0000000000000beef".into();
    world.instances.push(twin);
    let f = Fixture::with_world(world).await;
    f.run(&["db-1", "--", "true"], b"")
        .await
        .assert_status(255)
        .assert_stderr(&format!(
            "eic-ssh: Name tag 'db-1' matches no running instance, only {STOPPED} (stopped), i-0000000000000beef (stopped)\n\
             eic-ssh: hint: start one with: aws ec2 start-instances --instance-ids {STOPPED} i-0000000000000beef --region us-east-1\n"
        ));
}

/// A mistyped subcommand or Name that matches nothing: the hint names what
/// was probably meant.
#[async_test]
async fn a_typo_gets_a_did_you_mean() {
    let f = Fixture::with_world(stopped_db()).await;
    for (args, hint) in [
        (
            &["exce", "web-1", "--", "true"][..],
            "did you mean `eic-ssh exec`? A word that is no subcommand is taken for a target",
        ),
        (&["lss"], "did you mean `eic-ssh ls`?"),
        (
            &["--region", "us-east-1", "doctr", INSTANCE],
            "did you mean `eic-ssh doctor`?",
        ),
        (
            &["web1", "--", "true"],
            "did you mean 'web-1'? (close Names in this region)",
        ),
        (
            &["ls", "isolatd"],
            "did you mean 'isolated'? (close Names in this region)",
        ),
        (&["exec", "db1", "--", "true"], "did you mean 'db-1'?"),
        (
            &["zzz-9", "--", "true"],
            "list what there is with: eic-ssh ls; check --region and --profile",
        ),
    ] {
        let out = f.run(args, b"").await;
        out.assert_status(255);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: {out}");
        assert!(
            lines[0].contains("no running instance matches Name tag")
                && lines[1].starts_with(&format!("eic-ssh: hint: {hint}")),
            "{args:?}: {out}"
        );
    }
    // Nothing was pushed for a word that named no instance.
    let ops = f.ops();
    assert!(!ops.iter().any(|o| o == "SendSSHPublicKey"), "{ops:?}");
}

/// The connecting status line (on a terminal) says what is under way: a
/// Name is looked up first, and a key is pushed only to an instance it
/// found.
#[async_test]
async fn the_status_line_pushes_no_key_for_a_name_that_names_nothing() {
    let f = Fixture::new().await;
    let out = crate::colour::on_a_terminal(&f, &[], &["--no-cache", "web-9", "--", "true"]).await;
    let screen = out.stdout_str();
    assert_eq!(out.status, Some(255), "{screen}");
    assert!(screen.contains("eic-ssh: looking up web-9…"), "{screen:?}");
    assert!(!screen.contains("pushing a key"), "{screen:?}");
    assert!(
        screen.contains("no running instance matches Name tag 'web-9'"),
        "{screen:?}"
    );

    let user = f.user();
    let out = crate::colour::on_a_terminal(
        &f,
        &[],
        &["--no-cache", &format!("{user}@web-1"), "--", "true"],
    )
    .await;
    let screen = out.stdout_str();
    assert_eq!(out.status, Some(0), "{screen}");
    for said in [
        "eic-ssh: looking up web-1…".to_owned(),
        format!("eic-ssh: pushing a key to {INSTANCE}…"),
        format!("eic-ssh: authenticating as {user}…"),
    ] {
        assert!(screen.contains(&said), "{said:?} not in {screen:?}");
    }
}
