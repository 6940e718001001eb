use super::*;
use clap::CommandFactory;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_args(std::iter::once("eic-ssh").chain(args.iter().copied()))
}

#[test]
fn clap_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn command_words_are_joined_like_ssh() {
    let cli = parse(&["i-0123456789abcdef0", "--", "echo", "a b", "-n"]).unwrap();
    assert_eq!(cli.ssh.remote_command(), Some(b"echo a b -n".to_vec()));
    let cli = parse(&["i-0123456789abcdef0", "uptime"]).unwrap();
    assert_eq!(cli.ssh.remote_command(), Some(b"uptime".to_vec()));
    let cli = parse(&["i-0123456789abcdef0"]).unwrap();
    assert_eq!(cli.ssh.remote_command(), None);
}

#[test]
fn user_precedence() {
    let cli = parse(&["i-0123456789abcdef0"]).unwrap();
    assert_eq!(cli.ssh.user(), "ec2-user");
    let cli = parse(&["ubuntu@i-0123456789abcdef0"]).unwrap();
    assert_eq!(cli.ssh.user(), "ubuntu");
    let cli = parse(&["-l", "admin", "ubuntu@i-0123456789abcdef0"]).unwrap();
    assert_eq!(cli.ssh.user(), "admin");
}

#[test]
fn bad_values_are_usage_errors_naming_the_value() {
    for (args, needle) in [
        (
            vec!["-p", "23", "i-0123456789abcdef0"],
            "port '23' is not allowed",
        ),
        (
            vec!["--max-tunnel-duration", "0", "i-0123456789abcdef0"],
            "0",
        ),
        (
            vec!["--max-tunnel-duration", "3601", "i-0123456789abcdef0"],
            "3601",
        ),
        (vec!["i-0123"], "'i-0123' is not an EC2 instance ID"),
        (
            vec!["10.0.0.300"],
            "'10.0.0.300' is not a valid IPv4 address",
        ),
        (vec!["--eice-id", "eic-1", "i-0123456789abcdef0"], "'eic-1'"),
        (
            vec!["--private-ip", "10.0.0.300", "i-0123456789abcdef0"],
            "10.0.0.300",
        ),
    ] {
        let err = parse(&args)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let cli = parse(&["-p", "3389", "i-0123456789abcdef0"]).unwrap();
    assert_eq!(cli.ssh.connect.port, 3389);
}

#[test]
fn keepalive_interval_is_bounded() {
    let err = parse(&[
        "--keepalive-interval",
        "18446744073709551615",
        "i-0123456789abcdef0",
    ])
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(err.contains("18446744073709551615"), "{err}");
    assert!(parse(&["--keepalive-interval", "86401", "i-0123456789abcdef0"]).is_err());
    let cli = parse(&["--keepalive-interval", "86400", "i-0123456789abcdef0"]).unwrap();
    assert_eq!(cli.ssh.keepalive_interval, 86_400);
    let cli = parse(&["--keepalive-interval", "0", "i-0123456789abcdef0"]).unwrap();
    assert_eq!(cli.ssh.keepalive_interval, 0);
}

#[test]
fn global_flags_work_before_a_subcommand() {
    let cli = parse(&["-v", "cache", "path"]).unwrap();
    assert!(matches!(
        cli.subcommand,
        Some(Subcommand::Cache {
            action: CacheAction::Path
        })
    ));
    assert_eq!(cli.verbosity.verbose, 1);
    let cli = parse(&["-q", "proxy", "i-0123456789abcdef0"]).unwrap();
    assert!(matches!(cli.subcommand, Some(Subcommand::Proxy(_))));
    assert!(cli.verbosity.quiet);
    let cli = parse(&["cache", "-vv", "clear"]).unwrap();
    assert_eq!(cli.verbosity.verbose, 2);
    let cli = parse(&["-v", "--verbose", "ssh-config"]).unwrap();
    assert!(matches!(cli.subcommand, Some(Subcommand::SshConfig(_))));
    assert_eq!(cli.verbosity.verbose, 2);
    // A subcommand's name after the target is a remote command word.
    let cli = parse(&["i-0123456789abcdef0", "proxy"]).unwrap();
    assert!(cli.subcommand.is_none());
    assert_eq!(cli.ssh.remote_command(), Some(b"proxy".to_vec()));
    let cli = parse(&["-v", "i-0123456789abcdef0", "cache", "path"]).unwrap();
    assert!(cli.subcommand.is_none());
    assert_eq!(cli.ssh.remote_command(), Some(b"cache path".to_vec()));
    // Session flags still belong to the session only: after one, a
    // subcommand's name is the target (a Name tag) and not a subcommand.
    let cli = parse(&["-t", "cache", "path"]).unwrap();
    assert!(cli.subcommand.is_none());
    assert_eq!(
        cli.ssh.target.as_ref().map(|t| t.expr.clone()),
        Some(crate::target::syntax::TargetExpr::Name("cache".into()))
    );
    assert_eq!(cli.ssh.remote_command(), Some(b"path".to_vec()));
}

#[test]
fn forwarding_flags() {
    let cli = parse(&[
        "-N",
        "-L",
        "5432:db:5432",
        "-L",
        "*:8080:web:80",
        "-D",
        "1080",
        "-R",
        "0:localhost:3000",
        "i-0123456789abcdef0",
    ])
    .unwrap();
    let f = cli.ssh.forwards();
    assert_eq!((f.local.len(), f.dynamic.len(), f.remote.len()), (2, 1, 1));
    assert!(cli.ssh.no_command);
    let err = parse(&["-L", "5432:db", "i-0123456789abcdef0"])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("'5432:db'"), "{err}");
    assert!(parse(&["-N", "i-0123456789abcdef0", "uptime"]).is_err());
}

#[test]
fn cp_takes_scp_flags_and_capital_p_for_the_port() {
    let cli = parse(&[
        "cp",
        "-r",
        "-p",
        "-P",
        "22",
        "a",
        "b",
        "i-0123456789abcdef0:/tmp",
    ])
    .unwrap();
    let Some(Subcommand::Cp(cp)) = cli.subcommand else {
        panic!("not cp");
    };
    assert!(cp.recursive && cp.preserve);
    assert_eq!(cp.paths.len(), 3);
    assert!(parse(&["cp", "only-one"]).is_err());
}

/// Every option a subcommand shares with the session may come before the
/// subcommand's name (`eic-ssh --region eu-west-1 ls`) and means the same
/// as after it. The options are read from the definitions, so a new shared
/// option is covered (or needs a sample value here).
#[test]
fn shared_options_work_before_every_subcommand() {
    let id = "i-0123456789abcdef0";
    let invocations: &[&[&str]] = &[
        &["proxy", id],
        &["tunnel", id, "--local-port", "0"],
        &["ssh-config"],
        &["host-keys", id],
        &["doctor", id],
        &["restrict", id, "--allow", "203.0.113.0/24"],
        &["ls"],
        &["exec", id, "--", "true"],
        &["cp", "a", "i-0123456789abcdef0:b"],
        &["cache", "path"],
        &["completions", "bash"],
        &["man"],
    ];
    let sample = |long: &str| -> Option<&str> {
        Some(match long {
            "region" => "eu-west-1",
            "profile" => "prod",
            "user" => "ubuntu",
            "eice-id" => "eice-0123456789abcdef0",
            "private-ip" => "10.0.1.10",
            "port" => "3389",
            "max-tunnel-duration" => "60",
            "connect-timeout" => "5",
            "known-hosts" => "/tmp/known_hosts",
            _ => return None,
        })
    };
    let mut command = Cli::command();
    command.build();
    let top: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    let mut checked = 0;
    for invocation in invocations {
        let name = invocation[0];
        let sub = command.find_subcommand(name).unwrap();
        for arg in sub.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if !top.iter().any(|t| t == long) || ["help", "version"].contains(&long) {
                continue;
            }
            // --eice-dns needs --eice-id beside it: covered with it below.
            if long == "eice-dns" {
                continue;
            }
            let mut option = vec![format!("--{long}")];
            if arg.get_action().takes_values() {
                let value = match arg.get_possible_values().first() {
                    Some(v) => v.get_name().to_owned(),
                    None => sample(long)
                        .unwrap_or_else(|| panic!("no sample value for --{long}"))
                        .to_owned(),
                };
                // Both spellings: `--opt value` and `--opt=value`.
                for before in [
                    vec![option[0].clone(), value.clone()],
                    vec![format!("--{long}={value}")],
                ] {
                    check(&before, invocation);
                    checked += 1;
                }
                option.push(value);
            } else {
                check(&option, invocation);
                checked += 1;
            }
        }
    }
    assert!(checked > 60, "only {checked} combinations");
    // Short options, clustered or with a joined value, and the endpoint's
    // name beside its ID.
    check(&["-vv", "-l", "ubuntu"], &["exec", id, "--", "true"]);
    check(&["-p3389", "-q"], &["proxy", id]);
    check(
        &[
            "--eice-id",
            "eice-0123456789abcdef0",
            "--eice-dns",
            "eice-0123456789abcdef0.abc.ec2-instance-connect-endpoint.us-east-1.amazonaws.com",
        ],
        &["proxy", id],
    );

    /// `eic-ssh BEFORE… SUB REST…` parses as `eic-ssh SUB BEFORE… REST…`.
    fn check<S: AsRef<str>>(before: &[S], invocation: &[&str]) {
        let before: Vec<&str> = before.iter().map(AsRef::as_ref).collect();
        let (sub, rest) = invocation.split_first().unwrap();
        let first: Vec<&str> = before.iter().chain([sub]).chain(rest).copied().collect();
        let after: Vec<&str> = [*sub].iter().chain(&before).chain(rest).copied().collect();
        let expected = parse(&after).unwrap_or_else(|e| panic!("{after:?}: {e}"));
        let got = parse(&first).unwrap_or_else(|e| panic!("{first:?}: {e}"));
        assert_eq!(format!("{got:?}"), format!("{expected:?}"), "{first:?}");
    }
}

#[test]
fn an_option_a_subcommand_does_not_take_keeps_the_word_a_target() {
    // The cache takes no --region: `cache` is a Name tag here.
    let cli = parse(&["--region", "eu-west-1", "cache", "path"]).unwrap();
    assert!(cli.subcommand.is_none());
    assert_eq!(
        cli.ssh.target.as_ref().map(|t| t.expr.clone()),
        Some(crate::target::syntax::TargetExpr::Name("cache".into()))
    );
    // A value that spells a subcommand is a value.
    let cli = parse(&["--profile", "ls", "exec", "web-1", "--", "true"]).unwrap();
    let Some(Subcommand::Exec(exec)) = cli.subcommand else {
        panic!("not exec: {cli:?}");
    };
    assert_eq!(exec.aws.profile.as_deref(), Some("ls"));
    // After `--`, nothing moves.
    let cli = parse(&["-v", "--", "ls"]).unwrap();
    assert!(cli.subcommand.is_none());
}
