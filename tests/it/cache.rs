//! The lookup cache: a warm connection skips the lookups, a stale route is
//! looked up afresh transparently, and the cache can be bypassed and cleared.

use crate::support::*;

/// The operations the simulator answered so far, as `Op status`.
fn ops(f: &Fixture) -> Vec<String> {
    f.sim
        .request_log()
        .into_iter()
        .map(|e| format!("{} {}", e.op, e.status))
        .collect()
}

/// Where the fixture's eic-ssh keeps the cache.
fn cache_file(f: &Fixture) -> std::path::PathBuf {
    f.home.path().join(".cache/eic-ssh/routes.json")
}

#[async_test]
async fn a_warm_connection_needs_only_the_tunnel_and_the_push() {
    let f = Fixture::new().await;
    f.run(&[&f.target(), "--", "echo", "cold"], b"")
        .await
        .assert_stdout("cold\n");
    let cold = ops(&f);
    assert!(
        cold.iter().any(|o| o.starts_with("DescribeInstances ")),
        "{cold:?}"
    );

    f.run(&[&f.target(), "--", "echo", "warm"], b"")
        .await
        .assert_stdout("warm\n");
    let mut warm: Vec<String> = ops(&f).split_off(cold.len());
    warm.sort();
    assert_eq!(warm, ["OpenTunnel 101", "SendSSHPublicKey 200"]);

    // The cache holds no secrets and only the user can read it.
    let text = std::fs::read_to_string(cache_file(&f)).unwrap();
    assert!(
        text.contains("10.0.1.10") && text.contains("eice-0123456789abcdef0"),
        "{text}"
    );
    let creds = f.sim.credentials();
    assert!(!text.contains(&creds.secret_access_key) && !text.contains(&creds.access_key_id));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(cache_file(&f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[async_test]
async fn a_stale_route_is_looked_up_afresh_once() {
    let f = Fixture::new().await;
    f.run(&[&f.target(), "--", "true"], b"")
        .await
        .assert_success();
    // The instance's private IP changes behind the cache's back.
    f.set_instance(INSTANCE, |i| i.private_ip = Some("10.0.1.99".into()));
    let before = ops(&f).len();
    f.run(&[&f.target(), "--", "echo", "recovered"], b"")
        .await
        .assert_stdout("recovered\n");
    let after: Vec<String> = ops(&f).split_off(before);
    let tunnels: Vec<&String> = after
        .iter()
        .filter(|o| o.starts_with("OpenTunnel"))
        .collect();
    // One failed cached attempt, one fresh.
    assert_eq!(tunnels.len(), 2, "{after:?}");
    assert!(
        !tunnels[0].ends_with("101") && tunnels[1].ends_with("101"),
        "{after:?}"
    );
    assert!(
        after.iter().any(|o| o.starts_with("DescribeInstances ")),
        "{after:?}"
    );
    let text = std::fs::read_to_string(cache_file(&f)).unwrap();
    assert!(
        text.contains("10.0.1.99"),
        "the fresh route was cached: {text}"
    );
}

#[async_test]
async fn no_cache_and_cache_clear() {
    let f = Fixture::new().await;
    let path = cache_file(&f);
    f.run(&["--no-cache", &f.target(), "--", "true"], b"")
        .await
        .assert_success();
    assert!(!path.exists());
    f.run(&[&f.target(), "--", "true"], b"")
        .await
        .assert_success();
    assert!(path.exists());
    f.run(&["cache", "path"], b"")
        .await
        .assert_stdout(&format!("{}\n", path.display()));
    f.run(&["cache", "clear"], b"")
        .await
        .assert_success()
        .assert_stderr_contains("cleared");
    assert!(!path.exists());
    // Cleared, the next connection looks up again.
    let before = f.ops().len();
    f.run(&[&f.target(), "--", "true"], b"")
        .await
        .assert_success();
    assert!(
        f.ops()[before..].iter().any(|o| o == "DescribeInstances"),
        "{:?}",
        f.ops()
    );
}

/// `eic-ssh ls` records what it listed, as a connection's lookup does: shell
/// completion then offers the Names, and the next connection needs no
/// lookup. `--no-cache` records nothing.
#[async_test]
async fn ls_feeds_completion_and_the_next_connection() {
    let f = Fixture::new().await;
    let path = cache_file(&f);
    let complete = |word: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_eic-ssh"));
        cmd.env_clear()
            .envs(f.env())
            .env("COMPLETE", "fish")
            .args(["--", "eic-ssh", word]);
        let out: Output = cmd.output().unwrap().into();
        out.assert_success().stdout_str()
    };
    assert_eq!(complete("web"), "", "nothing seen yet");

    f.run(&["ls", "--no-cache"], b"").await.assert_success();
    assert!(!path.exists());

    f.run(&["ls"], b"").await.assert_success();
    assert_eq!(complete("web"), format!("web-1\t{INSTANCE}\n"));
    // The stopped web-1 and the instance with no endpoint have no route.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains(STOPPED) && !text.contains(NO_ENDPOINT),
        "{text}"
    );

    // The next connection to it goes straight to the tunnel.
    let before = f.ops().len();
    f.run(&[&f.target(), "--", "true"], b"")
        .await
        .assert_success();
    let ops = f.ops().split_off(before);
    assert!(!ops.iter().any(|op| op.starts_with("Describe")), "{ops:?}");
}
