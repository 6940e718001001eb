//! The profile asked for signs: `--profile` and `AWS_PROFILE` win over
//! keys in the environment, `-v` names the identity used, and credential
//! errors are one line with the fix.

use crate::support::*;

/// A well-formed access key the simulator does not know: whatever it signs
/// is refused with AuthFailure.
const UNKNOWN_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const UNKNOWN_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// A fixture whose environment holds the unknown key, and whose
/// credentials file has profile `good` (the simulator's long-term key) and
/// `temp` (its temporary key, with a session token).
async fn env_key_and_profiles() -> Fixture {
    let f = Fixture::new().await;
    let long = f.sim.credentials();
    let temp = f.sim.session_credentials();
    std::fs::write(
        f.home.path().join("aws-credentials"),
        format!(
            "[good]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n\
             [temp]\naws_access_key_id = {}\naws_secret_access_key = {}\naws_session_token = {}\n",
            long.access_key_id,
            long.secret_access_key,
            temp.access_key_id,
            temp.secret_access_key,
            temp.session_token.unwrap_or_default(),
        ),
    )
    .unwrap();
    f
}

/// `eic-ssh` with the unknown key in the environment.
fn with_env_key(f: &Fixture) -> tokio::process::Command {
    let mut cmd = f.command();
    cmd.env("AWS_ACCESS_KEY_ID", UNKNOWN_KEY)
        .env("AWS_SECRET_ACCESS_KEY", UNKNOWN_SECRET);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_profile_signs_even_with_keys_in_the_environment() {
    let f = env_key_and_profiles().await;
    let target = f.target();

    // Without a profile the environment's key signs, and is refused.
    let out = f
        .run_cmd(with_env_key(&f), &[&target, "--", "echo", "ok"], b"")
        .await;
    assert_eq!(out.status, Some(255), "{}", out.stderr);
    assert!(out.stderr.contains("AuthFailure"), "{}", out.stderr);

    // --profile: the profile's key signs every call and the tunnel.
    let out = f
        .run_cmd(
            with_env_key(&f),
            &["--profile", "good", &target, "--", "echo", "ok"],
            b"",
        )
        .await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout_str(), "ok\n");
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);

    // AWS_PROFILE too, here with temporary keys and their session token;
    // that both are set is said.
    let mut cmd = with_env_key(&f);
    cmd.env("AWS_PROFILE", "temp");
    let out = f
        .run_cmd(cmd, &["--no-cache", &target, "--", "echo", "ok"], b"")
        .await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout_str(), "ok\n");
    assert!(
        out.stderr.contains(
            "AWS_PROFILE=temp and AWS_ACCESS_KEY_ID are both set: using profile temp's credentials"
        ),
        "{}",
        out.stderr
    );

    // The subcommands that call AWS too.
    let out = f
        .run_cmd(
            with_env_key(&f),
            &["ls", "--profile", "good", "--json"],
            b"",
        )
        .await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_names_the_identity_used_and_never_the_secret() {
    let f = env_key_and_profiles().await;
    let good = f.sim.credentials();
    let out = f
        .run_cmd(
            with_env_key(&f),
            &["-v", "--profile", "good", &f.target(), "--", "true"],
            b"",
        )
        .await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    let id = &good.access_key_id;
    let elided = format!("{}…{}", &id[..4], &id[id.len() - 4..]);
    assert!(
        out.stderr.contains(&format!(
            "AWS identity: profile good (from --profile), access key {elided}, region us-east-1"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("AWS_ACCESS_KEY_ID is set, but --profile good is in effect"),
        "{}",
        out.stderr
    );
    for secret in [id.as_str(), &good.secret_access_key, UNKNOWN_SECRET] {
        assert!(
            !out.stderr.contains(secret),
            "{secret} shown: {}",
            out.stderr
        );
    }

    // Without a profile: the environment, named as such.
    let out = f.run(&["-v", &f.target(), "--", "true"], b"").await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "AWS identity: the environment (AWS_ACCESS_KEY_ID), access key {elided}, region us-east-1"
        )),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_profile_that_was_used() {
    let f = env_key_and_profiles().await;
    let out = f
        .run_cmd(
            with_env_key(&f),
            &["--profile", "good", "no-such-name", "--", "true"],
            b"",
        )
        .await;
    assert_eq!(out.status, Some(255), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "no running instance matches Name tag 'no-such-name' in region us-east-1 (profile good)"
        ),
        "{}",
        out.stderr
    );
    // With the environment's key (the simulator's own here), no profile
    // is claimed.
    let out = f.run(&["no-such-name", "--", "true"], b"").await;
    assert!(
        out.stderr
            .contains("in region us-east-1 (environment credentials)"),
        "{}",
        out.stderr
    );
}
