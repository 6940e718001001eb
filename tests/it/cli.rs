//! The command line as people type it: options before a subcommand, as
//! with `aws --profile prod …`.

use crate::support::*;

/// Options before the subcommand work as after it, with the real binary
/// against the simulator: none of these becomes a Name tag lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
        assert_eq!(out.status, Some(0), "{}", out.stderr);
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
            assert_eq!(out.status, Some(0), "{}", out.stderr);
            assert!(out.stdout_str().trim_start().starts_with('['));
        }),
        (
            &["--profile", "p", "exec", &target, "--", "echo", "hi"],
            &|out| {
                assert_eq!(out.status, Some(0), "{}", out.stderr);
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
