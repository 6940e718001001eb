//! Ephemeral key types: `--key-type`, and the transparent fallback to ECDSA
//! P-256 for an image whose sshd refuses ed25519 (FIPS mode), remembered in
//! the route cache.

use eic_sim::World;

use crate::support::*;

/// The key algorithms of the keys pushed so far, in order.
fn pushed_key_types(f: &Fixture) -> Vec<String> {
    f.sim
        .request_log()
        .into_iter()
        .filter(|e| e.op == "SendSSHPublicKey" && e.status == 200)
        .map(|e| e.detail.split_whitespace().nth(1).unwrap_or("").to_owned())
        .collect()
}

#[async_test]
async fn an_image_that_refuses_ed25519_gets_ecdsa_once_and_then_directly() {
    let f = Fixture::with_sshd_config(World::demo(), "PubkeyAcceptedAlgorithms -ssh-ed25519").await;
    let out = f
        .run(&["-v", &f.target(), "--", "echo", "first"], b"")
        .await;
    assert_eq!(
        out.stdout_str(),
        "first\n",
        "{}\n{}",
        out.stderr,
        f.sshd.log()
    );
    out.assert_status(0);
    out.assert_stderr_contains(
        "the server refused the ed25519 key; pushing an ECDSA P-256 key and trying again",
    );
    assert_eq!(
        pushed_key_types(&f),
        // The refused ed25519 key is first pushed again once (it may
        // have expired before use), then ECDSA.
        vec!["ssh-ed25519", "ssh-ed25519", "ecdsa-sha2-nistp256"]
    );

    // Next time the remembered type goes first, and alone.
    let out = f
        .run(&["-v", &f.target(), "--", "echo", "second"], b"")
        .await;
    assert_eq!(out.stdout_str(), "second\n", "{}", out.stderr);
    out.assert_stderr_contains(format!(
        "pushing an ecdsa key: {INSTANCE} refused ed25519 before"
    ));
    out.assert_stderr_lacks("refused the ed25519 key");
    assert_eq!(
        pushed_key_types(&f),
        vec![
            "ssh-ed25519",
            "ssh-ed25519",
            "ecdsa-sha2-nistp256",
            "ecdsa-sha2-nistp256"
        ]
    );

    // A type asked for is final: no fallback.
    let out = f
        .run(&["--key-type", "ed25519", &f.target(), "--", "true"], b"")
        .await;
    out.assert_status(255);
    assert!(
        out.stderr
            .contains("the instance refused SSH authentication for user"),
        "{}",
        out.stderr
    );
    // Pushed, refused, pushed again once (it may have expired), refused.
    assert_eq!(pushed_key_types(&f).len(), 6);
    assert_eq!(pushed_key_types(&f)[4..], ["ssh-ed25519", "ssh-ed25519"]);
}

#[async_test]
async fn key_type_picks_the_ephemeral_keys_type() {
    let f = Fixture::new().await;
    for (flag, pushed) in [("ecdsa", "ecdsa-sha2-nistp256"), ("rsa", "ssh-rsa")] {
        let before = pushed_key_types(&f).len();
        f.run(&["--key-type", flag, &f.target(), "--", "echo", "ok"], b"")
            .await
            .assert_success()
            .assert_stdout("ok\n");
        assert_eq!(pushed_key_types(&f)[before..], [pushed], "{flag}");
    }
    let out = f
        .run(&["--key-type", "dsa", &f.target(), "--", "true"], b"")
        .await;
    out.assert_status(2);
    out.assert_stderr_contains("'dsa'");
}
