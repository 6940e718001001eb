//! `eic-ssh exec` over many instances: the endpoint's quota of 20 open
//! tunnels, the summary, `--json`, `--output` and the exit status, and
//! known_hosts written by one writer.

use std::collections::{BTreeSet, HashMap};

use eic_sim::builtin_sshd::{BuiltinSshd, start_builtin_sshd};
use eic_sim::sshd::Sshd;
use eic_sim::{Instance, World};

use crate::support::*;

/// The demo world plus `n` running instances `node-<i>` tagged
/// `Role=fleet`, all in `vpc-1`/`subnet-1` behind the one endpoint.
pub(crate) fn fleet_world(n: usize) -> (World, Vec<String>) {
    let mut world = World::demo();
    let template = world.instances[0].clone();
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("i-0f{i:015x}");
        world.instances.push(Instance {
            id: id.clone(),
            private_ip: Some(format!("10.0.2.{}", 10 + i)),
            tags: vec![
                ("Name".into(), format!("node-{i}")),
                ("Role".into(), "fleet".into()),
            ],
            ssh: None,
            ..template.clone()
        });
        ids.push(id);
    }
    (world, ids)
}

/// A built-in SSH server for each instance (the scale tests' instances).
pub(crate) async fn builtin_servers(f: &Fixture, ids: &[String]) -> HashMap<String, BuiltinSshd> {
    let mut servers = HashMap::new();
    for id in ids {
        servers.insert(id.clone(), start_builtin_sshd(&f.sim, id).await.unwrap());
    }
    servers
}

/// A remote command that waits (30 s at the most) until `n` of its kind
/// have started, each in a tunnel of its own, then prints `word`: the
/// tunnels' overlap comes from a barrier, not from a sleep.
fn after_barrier(f: &Fixture, n: usize, word: &str) -> String {
    let dir = tempfile::tempdir_in(f.home.tmp()).unwrap().keep();
    let dir = dir.display();
    format!(
        "touch {dir}/$$; i=0; while [ $(ls {dir} | wc -l) -lt {n} ] && [ $i -lt 3000 ]; \
         do sleep 0.01; i=$((i+1)); done; echo {word}"
    )
}

#[async_test]
async fn exec_over_25_instances_keeps_to_20_tunnels_and_records_25_host_keys() {
    let (world, ids) = fleet_world(25);
    let f = Fixture::with_world(world).await;
    let servers = builtin_servers(&f, &ids).await;
    // The key push is throttled at first: retried, not reported.
    for _ in 0..3 {
        f.sim.fail_next(
            "SendSSHPublicKey",
            400,
            "ThrottlingException",
            "Rate exceeded",
        );
    }
    let user = f.user();
    let command = after_barrier(&f, 20, "hello from");
    let out = f
        .run(
            &[
                "exec",
                &format!("{user}@tag:Role=fleet"),
                "--parallel",
                "40",
                "--",
                &command,
            ],
            b"",
        )
        .await;
    out.assert_success();

    // Every instance answered, one whole prefixed line each.
    let text = out.stdout_str();
    let lines: BTreeSet<&str> = text.lines().collect();
    assert_eq!(text.lines().count(), 25, "{text}");
    for (i, id) in ids.iter().enumerate() {
        let line = format!("node-{i} ({id}): hello from");
        assert!(lines.contains(line.as_str()), "{line} missing:\n{text}");
    }
    assert!(
        out.stderr.contains("exec on 25 instance(s) in ")
            && out
                .stderr
                .contains(": 25 succeeded, 0 failed, 0 unreachable"),
        "{}",
        out.stderr
    );

    // The simulator's log: never more than 20 open at the endpoint, and
    // the limit was reached (40 were allowed in parallel; the first 20
    // commands hold their tunnels until all 20 are running).
    let peaks = f.sim.peak_tunnels();
    assert_eq!(peaks.get("eice-0123456789abcdef0"), Some(&20), "{peaks:?}");
    let log = f.sim.tunnel_log();
    assert!(log.iter().all(|e| e.open_after <= 20));
    let opened: BTreeSet<&str> = log
        .iter()
        .filter(|e| e.opened)
        .map(|e| e.instance_id.as_str())
        .collect();
    assert_eq!(opened.len(), 25);

    // Batched lookups: one DescribeInstances for the one target, one
    // endpoint listing, and no refusal for the quota.
    let api = f.sim.request_log();
    let count = |op: &str| api.iter().filter(|e| e.op == op).count();
    assert_eq!(count("DescribeInstances"), 1);
    assert_eq!(count("DescribeInstanceConnectEndpoints"), 1);
    assert_eq!(
        api.iter()
            .filter(|e| e.op == "OpenTunnel" && e.status == 101)
            .count(),
        25
    );

    // known_hosts: exactly 25 well-formed entries, each the instance's key.
    let known = std::fs::read_to_string(f.known_hosts()).unwrap();
    assert_eq!(known.lines().count(), 25, "{known}");
    let mut hosts = BTreeSet::new();
    for line in known.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "{line:?}");
        let server = servers.get(fields[0]).expect("a fleet instance");
        let key: Vec<&str> = server.host_key_pub.split_whitespace().take(2).collect();
        assert_eq!(&fields[1..], &key[..], "{line}");
        russh::keys::PublicKey::from_openssh(&format!("{} {}", fields[1], fields[2])).unwrap();
        hosts.insert(fields[0]);
    }
    assert_eq!(hosts.len(), 25);
}

#[async_test]
async fn exec_reports_a_stopped_target_and_a_failing_command() {
    let mut world = World::demo();
    let second = "i-0123456789abcdef1";
    world.instances.push(Instance {
        id: second.into(),
        private_ip: Some("10.0.1.12".into()),
        tags: vec![
            ("Name".into(), "web-2".into()),
            ("Role".into(), "web".into()),
        ],
        ..world.instances[0].clone()
    });
    let f = Fixture::with_world(world).await;
    let sshd2 = Sshd::start(&f.sim, second).await.unwrap();
    let user = f.user();
    // The second instance's sshd port makes its command exit 3.
    let command = format!(
        "case \"$SSH_CONNECTION\" in *' {}') echo failing; exit 3;; esac; echo fine",
        sshd2.addr.port()
    );
    let targets = [format!("{user}@tag:Role=web"), format!("{user}@{STOPPED}")];
    let mut args: Vec<&str> = vec!["exec", &targets[0], &targets[1], "--"];
    args.push(&command);
    let out = f.run(&args, b"").await;
    out.assert_status(1);
    let text = out.stdout_str();
    assert!(
        text.contains(&format!("web-1 ({INSTANCE}): fine\n")),
        "{text}\nstderr: {}",
        out.stderr
    );
    assert!(
        text.contains(&format!("web-2 ({second}): failing\n")),
        "{text}\nstderr: {}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(": 1 succeeded, 1 failed, 1 unreachable\n"),
        "{}",
        out.stderr
    );
    out.assert_stderr_contains(format!(
        "eic-ssh:   failed       web-2 ({second}): exit status 3\n"
    ));
    out.assert_stderr_contains(format!(
        "eic-ssh:   unreachable  web-1 ({STOPPED}): instance {STOPPED} is stopped, not running\n"
    ));

    // --json: the same, as one array.
    let mut json_args = args.clone();
    json_args.insert(1, "--json");
    let out = f.run(&json_args, b"").await;
    out.assert_status(1);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let row = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(row(INSTANCE)["exit_status"], 0);
    assert_eq!(row(INSTANCE)["stdout"], "fine\n");
    assert_eq!(row(INSTANCE)["error"], serde_json::Value::Null);
    assert_eq!(row(second)["exit_status"], 3, "{rows:#?}");
    assert_eq!(row(second)["name"], "web-2");
    assert_eq!(row(second)["stdout"], "failing\n");
    assert_eq!(row(STOPPED)["exit_status"], serde_json::Value::Null);
    assert_eq!(
        row(STOPPED)["error"],
        format!("instance {STOPPED} is stopped, not running")
    );
    assert!(row(INSTANCE)["duration_ms"].as_u64().is_some());
    assert!(row(INSTANCE)["stderr"].is_string());

    // --output DIR: files instead of prefixed lines.
    let dir = f.home.tmp().join("out");
    let dir_arg = dir.display().to_string();
    let mut file_args = args.clone();
    file_args.splice(1..1, ["--output", dir_arg.as_str()]);
    let out = f.run(&file_args, b"").await;
    out.assert_status(1);
    assert_eq!(out.stdout_str(), "");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    assert_eq!(read(&format!("{INSTANCE}.out")), "fine\n", "{}", out.stderr);
    assert_eq!(
        read(&format!("{second}.out")),
        "failing\n",
        "{}",
        out.stderr
    );
    assert_eq!(read(&format!("{INSTANCE}.err")), "");
}

#[async_test]
async fn per_endpoint_lowers_the_limit_and_quota_refusals_are_retried() {
    let (world, ids) = fleet_world(12);
    let f = Fixture::with_world(world).await;
    let _servers = builtin_servers(&f, &ids).await;
    // The endpoint refuses the first tunnels as over its quota (another
    // client's tunnels count too): retried with backoff, not failures.
    for _ in 0..3 {
        f.sim.fail_next(
            "OpenTunnel",
            429,
            "TooManyConnections",
            "The instance connect endpoint already has the maximum of 20 concurrent connections",
        );
    }
    let target = format!("{}@tag:Role=fleet", f.user());
    let command = after_barrier(&f, 5, "up");
    let out = f
        .run(
            &[
                "exec",
                "--per-endpoint",
                "5",
                "--verify-host-key",
                "none",
                &target,
                "--",
                &command,
            ],
            b"",
        )
        .await;
    out.assert_success();
    assert_eq!(out.stdout_str().lines().count(), 12, "{}", out.stdout_str());
    assert!(
        out.stderr
            .contains(": 12 succeeded, 0 failed, 0 unreachable"),
        "{}",
        out.stderr
    );
    let log = f.sim.request_log();
    let tunnels: Vec<u16> = log
        .iter()
        .filter(|e| e.op == "OpenTunnel")
        .map(|e| e.status)
        .collect();
    assert_eq!(
        tunnels.iter().filter(|s| **s == 429).count(),
        3,
        "{tunnels:?}"
    );
    assert_eq!(
        tunnels.iter().filter(|s| **s == 101).count(),
        12,
        "{tunnels:?}"
    );
    assert_eq!(
        f.sim.peak_tunnels().get("eice-0123456789abcdef0"),
        Some(&5),
        "{:?}",
        f.sim.peak_tunnels()
    );
    // --per-endpoint above the quota is refused before any call.
    let before = f.sim.request_log().len();
    let out = f
        .run(
            &["exec", "--per-endpoint", "21", &target, "--", "true"],
            b"",
        )
        .await;
    out.assert_status(2);
    out.assert_stderr_contains("21");
    assert_eq!(f.sim.request_log().len(), before);
}
