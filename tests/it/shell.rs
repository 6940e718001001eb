//! Living in people's shells (issue 17): completions, the man page, colour,
//! --version and `ssh-config --include`.

use std::path::Path;
use std::process::Command;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_eic-ssh");

/// Run `program args` with only HOME and PATH (the binary's directory
/// first): no AWS settings at all, so a completion cannot call AWS.
fn offline(home: &Path, program: &str, args: &[&str]) -> std::process::Output {
    let dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(program)
        .env_clear()
        .env("HOME", home)
        .env("PATH", path)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(args)
        .output()
        .unwrap()
}

fn script(home: &Path, shell: &str) -> std::path::PathBuf {
    let out = offline(home, BIN, &["completions", shell]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.is_empty());
    let path = home.join(format!("completion.{shell}"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

/// A lookup cache that has seen one instance.
fn seed_cache(home: &Path) {
    let dir = home.join(".cache/eic-ssh");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("routes.json"),
        r#"{"default|us-east-1|i-0123456789abcdef0":{"private_ip":"10.0.1.10","vpc_id":"vpc-1","subnet_id":"subnet-1","endpoint_id":"eice-0123456789abcdef0","dns_name":"eice-0123456789abcdef0.x.ec2-instance-connect-endpoint.us-east-1.amazonaws.com","saved_at":0}}"#,
    )
    .unwrap();
}

/// What bash's registered completion function offers for `line` (the
/// cursor at its end): the shell calls eic-ssh back, which answers from its
/// definitions and the cache.
fn bash_complete(home: &Path, bash: &Path, line: &str) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    let script = format!(
        "source {}; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT={}; _clap_complete_eic_ssh eic-ssh '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        bash.display(),
        words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" "),
        words.len() - 1,
        line.len(),
        words.last().unwrap(),
        words[words.len() - 2],
    );
    stdout(&offline(home, "bash", &["-c", &script]))
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_completion_script_is_generated_and_bash_loads_it() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        script(home.path(), shell);
    }
    let bash = script(home.path(), "bash");
    stdout(&offline(
        home.path(),
        "bash",
        &["-n", &bash.display().to_string()],
    ));
    let registered = stdout(&offline(
        home.path(),
        "bash",
        &[
            "-c",
            &format!("source {} && complete -p eic-ssh", bash.display()),
        ],
    ));
    assert!(
        registered.contains("-F _clap_complete_eic_ssh eic-ssh"),
        "{registered}"
    );

    // A real completion through the registered function: the shell calls
    // eic-ssh back, which answers from its definitions and the cache.
    seed_cache(home.path());
    let complete = |line: &str| bash_complete(home.path(), &bash, line);
    let subcommands = complete("eic-ssh do");
    assert!(
        subcommands.lines().any(|l| l.trim() == "doctor"),
        "{subcommands}"
    );
    let values = complete("eic-ssh --strict-host-key-checking ");
    for v in ["yes", "accept-new", "no"] {
        assert!(values.lines().any(|l| l.trim() == v), "{values}");
    }
    let ports = complete("eic-ssh -p ");
    assert_eq!(
        ports.lines().map(str::trim).collect::<Vec<_>>(),
        ["22", "3389"],
        "{ports}"
    );
    let targets = complete("eic-ssh ec2-user@i-0");
    assert!(
        targets
            .lines()
            .any(|l| l.trim() == "ec2-user@i-0123456789abcdef0"),
        "{targets}"
    );
    let targets = complete("eic-ssh proxy i-");
    assert!(
        targets.lines().any(|l| l.trim() == "i-0123456789abcdef0"),
        "{targets}"
    );
}

/// A connection by Name tag records the name beside the route, and a later
/// completion offers it, with no AWS settings at all.
#[async_test]
async fn a_name_seen_on_a_real_connection_completes_offline() {
    let f = Fixture::new().await;
    let out = f
        .run(&[&format!("{}@web-1", f.user()), "--", "true"], b"")
        .await;
    out.assert_success();
    let home = f.home.path();
    let bash = script(home, "bash");
    let offered = bash_complete(home, &bash, "eic-ssh we");
    assert_eq!(
        offered.lines().map(str::trim).collect::<Vec<_>>(),
        ["web-1"],
        "{offered}"
    );
    let offered = bash_complete(home, &bash, "eic-ssh cp ec2-user@web");
    assert!(
        offered.lines().any(|l| l.trim() == "ec2-user@web-1:"),
        "{offered}"
    );
    let offered = bash_complete(home, &bash, "eic-ssh exec i-0");
    assert!(offered.lines().any(|l| l.trim() == INSTANCE), "{offered}");
}

/// A Name tag is anyone's text: bash inserts what completion offers as
/// it is, so a name holding `$(…)` would run when the completed line does.
/// Only names that are one plain word are offered; the others' instances
/// complete by ID.
#[test]
fn bash_completion_never_offers_a_name_the_shell_would_run() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let marker = home.join("pwned");
    let names = [
        "web-1".to_owned(),
        format!("web$(touch {})", marker.display()),
        format!("web`touch {}`", marker.display()),
        format!("web;touch {}", marker.display()),
        "web server".to_owned(),
    ];
    let mut routes = serde_json::Map::new();
    for (i, name) in names.iter().enumerate() {
        routes.insert(
            format!("default|us-east-1|i-0123456789abcdef{i}"),
            serde_json::json!({
                "private_ip": format!("10.0.1.{}", 10 + i),
                "vpc_id": "vpc-1",
                "subnet_id": "subnet-1",
                "endpoint_id": "eice-0123456789abcdef0",
                "dns_name": "eice-0123456789abcdef0.x.ec2-instance-connect-endpoint.us-east-1.amazonaws.com",
                "saved_at": 0,
                "name": name,
            }),
        );
    }
    let dir = home.join(".cache/eic-ssh");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("routes.json"),
        serde_json::Value::Object(routes).to_string(),
    )
    .unwrap();
    let bash = script(home, "bash");
    for line in ["eic-ssh we", "eic-ssh ec2-user@we", "eic-ssh cp we"] {
        let offered = bash_complete(home, &bash, line);
        let offered: Vec<&str> = offered.lines().map(str::trim).collect();
        let word = line.rsplit(' ').next().unwrap();
        let user = word.split_once('@').map(|(u, _)| format!("{u}@"));
        // Each candidate, as the shell reads the line once completed.
        let echoed: Vec<String> = offered
            .iter()
            .map(|candidate| {
                stdout(&offline(
                    home,
                    "bash",
                    &["-c", &format!("printf '%s\\n' {candidate}")],
                ))
            })
            .collect();
        assert!(!marker.exists(), "completing {line:?} ran a command");
        for (candidate, echoed) in offered.iter().zip(&echoed) {
            assert_eq!(echoed.trim_end(), *candidate);
        }
        let suffix = if line.contains(" cp ") { ":" } else { "" };
        assert_eq!(
            offered,
            [format!("{}web-1{suffix}", user.unwrap_or_default())],
            "{line}"
        );
    }
    // The instances behind those names still complete by ID.
    let ids = bash_complete(home, &bash, "eic-ssh i-0123");
    assert_eq!(ids.lines().count(), names.len(), "{ids}");
}

/// Fails, naming `tool`, when it is not installed: a test that needs it
/// never passes without it (`.ci/run` installs zsh, fish and man).
fn require(tool: &str) {
    let found = Command::new(tool).arg("--version").output().is_ok();
    assert!(
        found,
        "{tool} is not installed, and this test needs it: install it (.ci/run does)"
    );
}

#[test]
fn zsh_and_fish_load_the_scripts_and_fish_completes_a_cached_instance() {
    let home = tempfile::tempdir().unwrap();
    require("zsh");
    require("fish");
    {
        let zsh = script(home.path(), "zsh");
        stdout(&offline(
            home.path(),
            "zsh",
            &["-n", &zsh.display().to_string()],
        ));
        let loaded = stdout(&offline(
            home.path(),
            "zsh",
            &[
                "-f",
                "-c",
                &format!(
                    "autoload -U compinit && compinit -u -D && source {} && print -r -- ${{_comps[eic-ssh]}}",
                    zsh.display()
                ),
            ],
        ));
        assert!(!loaded.trim().is_empty(), "zsh registered nothing");
    }
    {
        let fish = script(home.path(), "fish");
        stdout(&offline(
            home.path(),
            "fish",
            &["--no-execute", &fish.display().to_string()],
        ));
        seed_cache(home.path());
        let offered = stdout(&offline(
            home.path(),
            "fish",
            &[
                "--no-config",
                "-c",
                &format!(
                    "source {}; complete -C 'eic-ssh host-keys i-01'",
                    fish.display()
                ),
            ],
        ));
        assert!(
            offered
                .lines()
                .any(|l| l.starts_with("i-0123456789abcdef0")),
            "{offered}"
        );
        let offered = stdout(&offline(
            home.path(),
            "fish",
            &[
                "--no-config",
                "-c",
                &format!(
                    "source {}; complete -C 'eic-ssh --verify-host-key '",
                    fish.display()
                ),
            ],
        ));
        assert!(
            offered.lines().any(|l| l.starts_with("console")),
            "{offered}"
        );
    }
}

#[test]
fn the_man_pages_render_without_warnings() {
    let home = tempfile::tempdir().unwrap();
    for page in [
        vec!["man"],
        vec!["man", "doctor"],
        vec!["man", "ssh-config"],
    ] {
        let roff = offline(home.path(), BIN, &page);
        let text = stdout(&roff);
        assert!(text.contains(".TH"), "{text}");
        require("man");
        let mut man = Command::new("man")
            .args(["--warnings", "-E", "UTF-8", "-l", "-"])
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        man.stdin.take().unwrap().write_all(&roff.stdout).unwrap();
        let out = man.wait_with_output().unwrap();
        let rendered = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{page:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            rendered.contains("--strict-host-key-checking") || page.len() > 1,
            "{rendered}"
        );
        if page == ["man", "doctor"] {
            assert!(
                rendered.contains("eic-ssh-doctor") && rendered.contains("--expect-cidr"),
                "{rendered}"
            );
        }
    }
    let out = offline(home.path(), BIN, &["man", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'nosuch' is not a subcommand"));
}

#[test]
fn version_names_the_ssh_and_aws_libraries() {
    let home = tempfile::tempdir().unwrap();
    let text = stdout(&offline(home.path(), BIN, &["--version"]));
    assert!(
        text.starts_with(&format!("eic-ssh {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("\nrussh 0.65"), "{text}");
    assert!(text.contains("\naws-sdk-ec2 1."), "{text}");
    assert!(text.contains("\naws-sdk-ec2instanceconnect 1."), "{text}");
}

#[async_test]
async fn colour_follows_no_color_and_the_flag() {
    let f = Fixture::new().await;
    let run = |extra: Vec<(&'static str, &'static str)>, flags: Vec<&'static str>| {
        let f = &f;
        async move {
            let mut cmd = f.command();
            for (k, v) in extra {
                cmd.env(k, v);
            }
            let mut args: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
            args.extend([f.target(), "--".into(), "true".into()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = f.run_cmd(cmd, &args, b"").await;
            out.assert_success();
            assert!(
                out.stderr.contains("route resolved") || out.stderr.contains("cached route"),
                "{}",
                out.stderr
            );
            out.stderr.contains('\x1b')
        }
    };
    // stderr is a pipe here: auto means no colour.
    assert!(!run(vec![], vec!["-v"]).await);
    assert!(run(vec![], vec!["-v", "--color", "always"]).await);
    assert!(!run(vec![("NO_COLOR", "1")], vec!["-v"]).await);
    assert!(!run(vec![], vec!["-v", "--color=never"]).await);
}

#[async_test]
async fn ssh_config_include_keeps_the_file_is_idempotent_and_ssh_reads_it() {
    let f = Fixture::new().await;
    let ssh_dir = f.home.path().join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let config = ssh_dir.join("config");
    let original = "# mine\nHost build\n    HostName 192.0.2.10\n    User me\n";
    std::fs::write(&config, original).unwrap();

    let out = f.run(&["ssh-config", "--include"], b"").await;
    out.assert_success();
    assert!(out.stdout.is_empty());
    let block_file = ssh_dir.join("config.d/eic-ssh");
    let block = std::fs::read_to_string(&block_file).unwrap();
    assert!(
        block.contains("Host i-*") && block.contains(" proxy --user '%r' '%h' '%p'"),
        "{block}"
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.ends_with(original), "the rest is kept: {text}");
    let includes: Vec<&str> = text.lines().filter(|l| l.starts_with("Include ")).collect();
    assert_eq!(includes, [format!("Include {}", block_file.display())]);
    let first_directive = text
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap();
    assert!(first_directive.starts_with("Include "), "{text}");

    // A second run changes nothing.
    let before = (
        std::fs::read(&config).unwrap(),
        std::fs::read(&block_file).unwrap(),
    );
    let out = f.run(&["ssh-config", "--include"], b"").await;
    out.assert_success();
    out.assert_stderr_contains("up to date");
    assert_eq!(
        before,
        (
            std::fs::read(&config).unwrap(),
            std::fs::read(&block_file).unwrap()
        )
    );

    // The real ssh reads it: the instance gets the ProxyCommand, the
    // user's own host keeps its settings.
    let g = |host: &str| {
        let mut ssh = Command::new("ssh");
        ssh.arg("-F").arg(&config).args(["-G", host]);
        String::from_utf8_lossy(&stdout_of(ssh, &format!("ssh -G {host}"))).into_owned()
    };
    let resolved = g("i-0abc");
    let proxy = resolved
        .lines()
        .find(|l| l.starts_with("proxycommand "))
        .unwrap_or_else(|| panic!("{resolved}"));
    assert!(
        proxy.contains(" proxy --user ") && proxy.contains("eic-ssh"),
        "{proxy}"
    );
    assert!(g("build").contains("hostname 192.0.2.10"));

    // --include FILE: that file instead.
    let other = f.home.path().join("elsewhere.conf");
    let out = f
        .run(
            &[
                "ssh-config",
                "--include",
                &other.display().to_string(),
                "--host",
                "mi-*",
            ],
            b"",
        )
        .await;
    out.assert_success();
    assert!(
        std::fs::read_to_string(&other)
            .unwrap()
            .contains("Host mi-*")
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("Include ")).count(),
        2,
        "{text}"
    );
    assert!(text.ends_with(original));
}
