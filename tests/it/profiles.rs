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

#[async_test]
async fn an_explicit_profile_signs_even_with_keys_in_the_environment() {
    let f = env_key_and_profiles().await;
    let target = f.target();

    // Without a profile the environment's key signs, and is refused.
    let out = f
        .run_cmd(with_env_key(&f), &[&target, "--", "echo", "ok"], b"")
        .await;
    out.assert_status(255);
    out.assert_stderr_contains("AuthFailure");

    // --profile: the profile's key signs every call and the tunnel.
    let out = f
        .run_cmd(
            with_env_key(&f),
            &["--profile", "good", &target, "--", "echo", "ok"],
            b"",
        )
        .await;
    out.assert_success();
    assert_eq!(out.stdout_str(), "ok\n");
    out.assert_stderr_lacks("warning");

    // AWS_PROFILE too, here with temporary keys and their session token;
    // that both are set is said.
    let mut cmd = with_env_key(&f);
    cmd.env("AWS_PROFILE", "temp");
    let out = f
        .run_cmd(cmd, &["--no-cache", &target, "--", "echo", "ok"], b"")
        .await;
    out.assert_success();
    assert_eq!(out.stdout_str(), "ok\n");
    out.assert_stderr_contains("eic-ssh: warning: AWS_PROFILE=temp and AWS_ACCESS_KEY_ID are both set: using profile temp's credentials");

    // The subcommands that call AWS too.
    let out = f
        .run_cmd(
            with_env_key(&f),
            &["ls", "--profile", "good", "--json"],
            b"",
        )
        .await;
    out.assert_success();
}

#[async_test]
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
    out.assert_success();
    let id = &good.access_key_id;
    let elided = format!("{}…{}", &id[..4], &id[id.len() - 4..]);
    out.assert_stderr_contains(format!(
        "AWS identity: profile good (from --profile), access key {elided}, region us-east-1"
    ));
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
    out.assert_success();
    out.assert_stderr_contains(format!(
        "AWS identity: the environment (AWS_ACCESS_KEY_ID), access key {elided}, region us-east-1"
    ));
}

#[async_test]
async fn errors_name_the_profile_that_was_used() {
    let f = env_key_and_profiles().await;
    let out = f
        .run_cmd(
            with_env_key(&f),
            &["--profile", "good", "no-such-name", "--", "true"],
            b"",
        )
        .await;
    out.assert_status(255);
    out.assert_stderr_contains(
        "no running instance matches Name tag 'no-such-name' in region us-east-1 (profile good)",
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

/// Each credential problem is one line saying what is wrong, in the AWS
/// CLI's words where it has them, and one hint with the fix: no provider
/// chain, no SDK type names, no log lines.
#[async_test]
async fn credential_errors_are_one_line_with_the_fix() {
    let f = Fixture::new().await;
    std::fs::write(
        f.home.path().join("aws-config"),
        "[profile empty]\nregion = us-east-1\n\n\
         [profile proc]\ncredential_process = sh -c 'echo token expired >&2; exit 3'\n\n\
         [profile sso]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Admin\n\n\
         [sso-session corp]\nsso_region = us-east-1\nsso_start_url = https://corp.example.com/start\n\n\
         [profile role]\nrole_arn = arn:aws:iam::123456789012:role/ops\nsource_profile = base\n",
    )
    .unwrap();
    let target = f.target();
    // (profile by flag, by AWS_PROFILE, the error line, part of the hint)
    let cases: &[(Option<&str>, Option<&str>, &str, &str)] = &[
        (
            Some("nosuch"),
            None,
            "the config profile (nosuch) could not be found (it comes from --profile)",
            "the profiles in the AWS config files: empty, proc, role, sso. Or create it with: aws configure --profile nosuch",
        ),
        (
            None,
            Some("nosuch"),
            "the config profile (nosuch) could not be found (it comes from AWS_PROFILE)",
            "aws configure --profile nosuch",
        ),
        (
            None,
            None,
            "unable to locate credentials",
            "configure credentials: aws configure (access keys) or aws configure sso",
        ),
        (
            Some("empty"),
            None,
            "unable to locate credentials: profile empty has none, and no other source gave any",
            "aws configure --profile empty",
        ),
        (
            Some("role"),
            None,
            "the config profile (base) could not be found (it comes from the source_profile of profile role)",
            "aws configure --profile base",
        ),
        (
            Some("proc"),
            None,
            "cannot get AWS credentials from profile proc: Error retrieving credentials: external process exited with code exit status: 3. Stderr: token expired",
            "run profile proc's credential_process yourself",
        ),
        (
            Some("sso"),
            None,
            "cannot get AWS credentials from profile sso: failed to load the cached SSO token",
            "sign in again: aws sso login --profile sso",
        ),
    ];
    for (flag, env, line, hint) in cases {
        let mut cmd = f.command();
        cmd.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
        if let Some(p) = env {
            cmd.env("AWS_PROFILE", p);
        }
        let mut args = vec![];
        if let Some(p) = flag {
            args.extend(["--profile", p]);
        }
        args.extend([target.as_str(), "--", "true"]);
        let out = f.run_cmd(cmd, &args, b"").await;
        assert_eq!(out.status, Some(255), "{args:?}: {}", out.stderr);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            2,
            "{args:?} AWS_PROFILE={env:?}: {}",
            out.stderr
        );
        assert_eq!(lines[0], format!("eic-ssh: {line}"), "{}", out.stderr);
        assert!(
            lines[1].starts_with("eic-ssh: hint: ") && lines[1].contains(hint),
            "{}",
            out.stderr
        );
    }
    // Nothing was asked of AWS with no credentials to sign it.
    assert!(f.sim.request_log().is_empty(), "{:?}", f.sim.request_log());
}
