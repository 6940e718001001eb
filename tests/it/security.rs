//! Hostile and odd input (issue 18): each test here failed before its fix.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_a_tunnel_beyond_loopback_warns() {
    let f = Fixture::new().await;
    // TEST-NET-1 is on no interface: the bind fails after the warning, so
    // nothing is ever exposed by this test.
    let out = f
        .run(
            &[
                "tunnel",
                INSTANCE,
                "--local-port",
                "0",
                "--bind",
                "192.0.2.1",
            ],
            b"",
        )
        .await;
    assert!(
        out.stderr
            .contains("WARNING: --bind 192.0.2.1 is not a loopback address")
            && out.stderr.contains("unauthenticated tunnel"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_flags_before_a_subcommand() {
    let f = Fixture::new().await;
    let out = f.run(&["-v", "cache", "path"], b"").await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert!(out.stdout_str().trim_end().ends_with("eic-ssh/routes.json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_keepalive_interval_is_a_usage_error() {
    let f = Fixture::new().await;
    let out = f
        .run(
            &[
                "--keepalive-interval",
                "18446744073709551615",
                &f.target(),
                "--",
                "true",
            ],
            b"",
        )
        .await;
    assert_eq!(out.status, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("18446744073709551615"),
        "{}",
        out.stderr
    );
    assert!(f.sim.request_log().is_empty(), "no network call");
}
