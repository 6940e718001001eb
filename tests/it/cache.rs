//! The lookup cache: a warm connection skips the lookups, a stale route is
//! looked up afresh transparently, and the cache can be bypassed and cleared.

use crate::support::*;

fn ops(f: &Fixture) -> Vec<String> {
    f.sim
        .request_log()
        .into_iter()
        .map(|e| format!("{} {}", e.op, e.status))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_connection_needs_only_the_tunnel_and_the_push() {
    let f = Fixture::new().await;
    let out = f.run(&[&f.target(), "--", "echo", "cold"], b"").await;
    assert_eq!(out.stdout_str(), "cold\n", "{}", out.stderr);
    let cold = ops(&f);
    assert!(
        cold.iter().any(|o| o.starts_with("DescribeInstances ")),
        "{cold:?}"
    );

    let out = f.run(&[&f.target(), "--", "echo", "warm"], b"").await;
    assert_eq!(out.stdout_str(), "warm\n", "{}", out.stderr);
    let warm: Vec<String> = ops(&f).split_off(cold.len());
    assert_eq!(warm.len(), 2, "{warm:?}");
    assert!(
        warm.contains(&"SendSSHPublicKey 200".to_owned())
            && warm.contains(&"OpenTunnel 101".to_owned()),
        "{warm:?}"
    );

    // The cache holds no secrets and only the user can read it.
    let path = f.home.path().join(".cache/eic-ssh/routes.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("10.0.1.10") && text.contains("eice-0123456789abcdef0"),
        "{text}"
    );
    assert!(
        !text.contains(&f.sim.credentials().secret_access_key)
            && !text.contains(&f.sim.credentials().access_key_id)
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_route_is_looked_up_afresh_once() {
    let f = Fixture::new().await;
    let out = f.run(&[&f.target(), "--", "true"], b"").await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    // The instance's private IP changes behind the cache's back.
    f.sim.set_world(|w| {
        for i in &mut w.instances {
            if i.id == INSTANCE {
                i.private_ip = Some("10.0.1.99".into());
            }
        }
    });
    let before = ops(&f).len();
    let out = f.run(&[&f.target(), "--", "echo", "recovered"], b"").await;
    assert_eq!(out.stdout_str(), "recovered\n", "{}", out.stderr);
    let after: Vec<String> = ops(&f).split_off(before);
    let tunnels: Vec<&String> = after
        .iter()
        .filter(|o| o.starts_with("OpenTunnel"))
        .collect();
    assert_eq!(
        tunnels.len(),
        2,
        "one failed cached attempt, one fresh: {after:?}"
    );
    assert!(
        !tunnels[0].ends_with("101") && tunnels[1].ends_with("101"),
        "{after:?}"
    );
    assert!(
        after.iter().any(|o| o.starts_with("DescribeInstances ")),
        "{after:?}"
    );
    let text = std::fs::read_to_string(f.home.path().join(".cache/eic-ssh/routes.json")).unwrap();
    assert!(
        text.contains("10.0.1.99"),
        "the fresh route was cached: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cache_and_cache_clear() {
    let f = Fixture::new().await;
    let path = f.home.path().join(".cache/eic-ssh/routes.json");
    let out = f.run(&["--no-cache", &f.target(), "--", "true"], b"").await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert!(!path.exists());
    let out = f.run(&[&f.target(), "--", "true"], b"").await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert!(path.exists());
    let out = f.run(&["cache", "path"], b"").await;
    assert_eq!(out.stdout_str().trim(), path.display().to_string());
    let out = f.run(&["cache", "clear"], b"").await;
    assert_eq!(out.status, Some(0));
    assert!(out.stderr.contains("cleared"), "{}", out.stderr);
    assert!(!path.exists());
}

/// `eic-ssh ls` records what it listed, as a connection's lookup does: shell
/// completion then offers the Names, and the next connection needs no
/// lookup. `--no-cache` records nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_feeds_completion_and_the_next_connection() {
    let f = Fixture::new().await;
    let path = f.home.path().join(".cache/eic-ssh/routes.json");
    let complete = |word: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_eic-ssh"));
        cmd.env_clear()
            .envs(f.env())
            .env("COMPLETE", "fish")
            .args(["--", "eic-ssh", word]);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(complete("web"), "", "nothing seen yet");

    let out = f.run(&["ls", "--no-cache"], b"").await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert!(!path.exists());

    let out = f.run(&["ls"], b"").await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    let offered = complete("web");
    assert_eq!(offered, format!("web-1\t{INSTANCE}\n"));
    // The stopped web-1 and the instance with no endpoint have no route.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains(STOPPED) && !text.contains(NO_ENDPOINT),
        "{text}"
    );

    // The next connection by Name goes straight to the tunnel.
    let before = f.sim.request_log().len();
    let out = f.run(&[&f.target(), "--", "true"], b"").await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    let ops: Vec<String> = f.sim.request_log()[before..]
        .iter()
        .map(|e| e.op.clone())
        .collect();
    assert!(!ops.iter().any(|op| op.starts_with("Describe")), "{ops:?}");
}
