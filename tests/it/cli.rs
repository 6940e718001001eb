//! The command line as people type it: options before a subcommand, as
//! with `aws --profile prod …`.

use crate::support::*;

/// Options before the subcommand work as after it, with the real binary
/// against the simulator: none of these becomes a Name tag lookup.
#[async_test]
async fn options_before_a_subcommand_are_the_subcommands() {
    let f = Fixture::new().await;
    let creds = f.sim.credentials();
    std::fs::write(
        f.home.path().join("aws-credentials"),
        format!(
            "[p]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            creds.access_key_id, creds.secret_access_key
        ),
    )
    .unwrap();
    let cache = f.home.path().join(".cache/eic-ssh/routes.json");
    let user = f.user();
    let target = format!("{user}@{INSTANCE}");
    let ls_row = |out: &Output| {
        out.assert_success();
        assert!(
            out.stdout_str().contains(INSTANCE) && out.stdout_str().starts_with("ID"),
            "{}",
            out.stdout_str()
        );
    };
    // (arguments, what they must do)
    type Case<'a> = (&'a [&'a str], &'a dyn Fn(&Output));
    let cases: &[Case] = &[
        (&["--no-cache", "ls"], &|out| {
            ls_row(out);
            assert!(!cache.exists(), "--no-cache wrote the cache");
        }),
        (&["--region", "us-east-1", "ls"], &ls_row),
        (&["--region=us-east-1", "--color", "never", "ls"], &ls_row),
        (&["-q", "--profile", "p", "ls", "--json"], &|out| {
            out.assert_success();
            assert!(out.stdout_str().trim_start().starts_with('['));
        }),
        (
            &["--profile", "p", "exec", &target, "--", "echo", "hi"],
            &|out| {
                out.assert_success();
                assert!(out.stdout_str().ends_with(": hi\n"), "{}", out.stdout_str());
            },
        ),
        (
            &[
                "--strict-host-key-checking",
                "no",
                "-l",
                &user,
                "exec",
                INSTANCE,
                "--",
                "echo",
                "hi",
            ],
            &|out| assert_eq!(out.status, Some(0), "{}", out.stderr),
        ),
    ];
    for (args, expect) in cases {
        let mut cmd = f.command();
        // The profile's key signs where --profile is given; elsewhere the
        // environment's.
        if args.contains(&"--profile") {
            cmd.env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY");
        }
        let out = f.run_cmd(cmd, args, b"").await;
        assert!(
            !out.stderr.contains("Name tag"),
            "{args:?} looked up a Name: {}",
            out.stderr
        );
        expect(&out);
    }
}

/// A refused command line reads as eic-ssh's other messages (no bare
/// `error:` or `tip:`), and an OpenSSH option typed from habit gets what
/// it means here, not clap's "use '-- -o'" (which would run it remotely).
#[async_test]
async fn openssh_options_are_mapped_and_refusals_read_as_eic_ssh() {
    let f = Fixture::new().await;
    let target = f.target();
    // (arguments, the message, the hint)
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["-o", "StrictHostKeyChecking=no", "web-1"],
            "unexpected argument '-o' found",
            "use --strict-host-key-checking no",
        ),
        (
            &["-oUserKnownHostsFile=/tmp/kh", "web-1"],
            "unexpected argument '-o' found",
            "use --known-hosts /tmp/kh",
        ),
        (
            &["-i", "~/.ssh/prod.pem", "web-1"],
            "unexpected argument '-i' found",
            "eic-ssh needs no key file: it pushes a fresh ephemeral key for each connection",
        ),
        // After the target, without --, it is still the option, not a
        // remote command.
        (
            &[&target, "-i", "key"],
            "unexpected argument '-i' found",
            "`eic-ssh proxy --public-key key.pub %h %p`",
        ),
        (
            &["cp", "-R", "dir", "web-1:/tmp"],
            "unexpected argument '-R' found",
            "did you mean -r?",
        ),
        (
            &["-A", "web-1"],
            "unexpected argument '-A' found",
            "eic-ssh has no -A option",
        ),
        (
            &["--regin", "us-east-1", "ls"],
            "unexpected argument '--regin' found",
            "did you mean '--region'?",
        ),
        (
            &["ls", "--bogus"],
            "unexpected argument '--bogus' found",
            "eic-ssh ls --help lists the options",
        ),
        (
            &["-p", "23", "web-1"],
            "invalid value '23' for '--port <PORT>'",
            "",
        ),
    ];
    for (args, message, hint) in cases {
        let out = f.run(args, b"").await;
        assert_eq!(out.status, Some(2), "{args:?}: {}", out.stderr);
        let mut lines = out.stderr.lines();
        let first = lines.next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("eic-ssh: {message}")),
            "{args:?}: {}",
            out.stderr
        );
        if !hint.is_empty() {
            let second = lines.next().unwrap_or_default();
            assert!(
                second.starts_with("eic-ssh: hint: ") && second.contains(hint),
                "{args:?}: {}",
                out.stderr
            );
        }
        for line in out.stderr.lines() {
            assert!(
                !line.starts_with("error:") && !line.trim_start().starts_with("tip:"),
                "{args:?}: {}",
                out.stderr
            );
        }
        assert!(!out.stderr.contains("'-- -"), "{args:?}: {}", out.stderr);
    }
    assert!(
        f.sim.request_log().is_empty(),
        "a refused command line called AWS"
    );

    // After --, a word that starts with '-' is the user's remote command.
    let out = f.run(&[&target, "--", "-i", "key"], b"").await;
    out.assert_stderr_lacks("unexpected argument");
    let ops: Vec<String> = f.sim.request_log().into_iter().map(|e| e.op).collect();
    assert!(ops.iter().any(|o| o == "OpenTunnel"), "{ops:?}");
}
