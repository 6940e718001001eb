//! The second security review (issue 23), its findings outside `cp`: each
//! test here failed before its fix.

use std::path::{Path, PathBuf};

use eic_sim::{DEMO_INSTANCE_SG, LooseInterface, World};

use crate::support::*;

/// What a terminal acts on: controls (but newlines) and bidirectional
/// controls, which reorder what is displayed.
fn unprintable(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| (c.is_control() && c != '\n') || eic_ssh::text::is_bidi_control(c))
        .collect()
}

/// `ls` shows a Name tag, and `restrict`'s plan a network interface's
/// description: anyone's text, shown without C1 controls or bidirectional
/// controls. (XML cannot carry C0 controls such as ESC, so the API never
/// sends them.)
#[async_test]
async fn remote_text_in_ls_and_restricts_plan_is_cleaned() {
    let mut w = World::demo();
    w.instances[0].tags = vec![("Name".into(), "web-\u{202E}1txt.exe\u{9b}2J".into())];
    w.endpoints[0].preserve_client_ip = false;
    w.loose_interfaces.push(LooseInterface {
        id: "eni-0loose".into(),
        vpc_id: "vpc-1".into(),
        subnet_id: "subnet-1".into(),
        description: "lambda \u{202E}gpj.exe\u{9b}2J\u{2066}x".into(),
        security_group_ids: vec![DEMO_INSTANCE_SG.into()],
    });
    let f = Fixture::with_world(w).await;

    let out = f.run(&["ls"], b"").await;
    out.assert_success();
    let text = out.stdout_str();
    assert!(text.contains("web-1txt.exe2J"), "{text}");
    assert_eq!(unprintable(&text), Vec::<char>::new(), "{text:?}");

    let out = f
        .run(&["restrict", INSTANCE, "--allow", "203.0.113.0/24"], b"")
        .await;
    let text = out.stdout_str();
    assert!(
        text.contains("eni-0loose (interface: lambda gpj.exe2Jx)"),
        "{text}\n{}",
        out.stderr
    );
    assert_eq!(unprintable(&text), Vec::<char>::new(), "{text:?}");
    assert_eq!(
        unprintable(&out.stderr),
        Vec::<char>::new(),
        "{:?}",
        out.stderr
    );
}

/// `eic-ssh args…` with only HOME and PATH set, in `dir`: no AWS at all.
fn offline(home: &Path, dir: &Path, args: &[&str]) -> Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eic-ssh"))
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    Output {
        status: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every file under `dir` with its bytes, links as their targets.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_symlink() {
                let target = std::fs::read_link(&p).unwrap();
                out.push((p, target.into_os_string().into_encoded_bytes()));
            } else if meta.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// `ssh-config --include FILE` replaces only a file eic-ssh wrote, and
/// never the ssh config file itself, however it is named: each refusal is
/// exit 2, names the file and why, and writes nothing.
#[test]
fn ssh_config_include_replaces_only_its_own_file() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let ssh = home.join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    let config = ssh.join("config");
    std::fs::write(&config, "Host build\n    HostName 192.0.2.10\n").unwrap();
    let passwd = home.join("passwd");
    std::fs::write(&passwd, "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    std::os::unix::fs::symlink(&config, home.join("config-link")).unwrap();
    std::fs::hard_link(&config, home.join("config-hard")).unwrap();
    std::fs::create_dir_all(ssh.join("config.d")).unwrap();
    std::os::unix::fs::symlink(&passwd, ssh.join("config.d/eic-ssh")).unwrap();
    let at = |p: &str| home.join(p).display().to_string();

    let cases: Vec<(&Path, String, &str)> = vec![
        (home, "~/.ssh/config".into(), "is the ssh config file"),
        (home, at(".ssh/../.ssh/config"), "is the ssh config file"),
        (home, at(".ssh/./config"), "is the ssh config file"),
        (&ssh, "config".into(), "is the ssh config file"),
        (home, at("config-link"), "is the ssh config file"),
        (home, at("config-hard"), "is the ssh config file"),
        (home, at("passwd"), "eic-ssh did not write it"),
        // The default file, a link someone left to another file.
        (home, String::new(), "eic-ssh did not write it"),
        (home, at(".ssh"), "not a regular file"),
    ];
    let before = snapshot(home);
    for (dir, file, why) in &cases {
        let mut args = vec!["ssh-config", "--include"];
        if !file.is_empty() {
            args.push(file);
        }
        let out = offline(home, dir, &args);
        assert_eq!(out.status, Some(2), "{file}: {}", out.stderr);
        assert!(
            out.stderr.contains(why) && out.stderr.contains("nothing was written"),
            "{file}: {}",
            out.stderr
        );
        // Named as an absolute path (`~` and `.` resolved).
        let named = match file.as_str() {
            "" => "/.ssh/config.d/eic-ssh",
            f => Path::new(f).file_name().and_then(|n| n.to_str()).unwrap(),
        };
        assert!(
            out.stderr.contains("--include /") && out.stderr.contains(&format!("{named}: ")),
            "{file}: {}",
            out.stderr
        );
        assert_eq!(snapshot(home), before, "{file} changed something");
    }

    // With no ssh config yet, its own name is refused all the same.
    std::fs::remove_file(&config).unwrap();
    let out = offline(
        home,
        home,
        &["ssh-config", "--include", &at(".ssh/x/../config")],
    );
    out.assert_status(2);
    assert!(!config.exists());

    // Its own file is replaced (atomically, 0600), the header first.
    std::fs::remove_file(ssh.join("config.d/eic-ssh")).unwrap();
    let out = offline(home, home, &["ssh-config", "--include"]);
    out.assert_success();
    let ours = ssh.join("config.d/eic-ssh");
    let text = std::fs::read_to_string(&ours).unwrap();
    let header = eic_ssh::commands::ssh_config::INCLUDE_HEADER;
    assert_eq!(text.lines().next(), Some(header), "{text}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&ours).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    std::fs::write(&ours, format!("{header}\nHost stale\n")).unwrap();
    let out = offline(home, home, &["ssh-config", "--include", "--host", "mi-*"]);
    out.assert_success();
    let text = std::fs::read_to_string(&ours).unwrap();
    assert!(
        text.starts_with(header) && text.contains("Host mi-*"),
        "{text}"
    );
    assert!(!text.contains("stale"), "{text}");
    // A copy of the block the user edited, without the header, is theirs.
    std::fs::write(&ours, text.replacen(header, "# mine", 1)).unwrap();
    let out = offline(home, home, &["ssh-config", "--include"]);
    out.assert_status(2);
    assert!(
        std::fs::read_to_string(&ours)
            .unwrap()
            .starts_with("# mine")
    );
    // No temporary file was left behind.
    let names: Vec<String> = std::fs::read_dir(ssh.join("config.d"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["eic-ssh"]);
}

/// `exec --output DIR` writes only new files of its own, readable by the
/// user alone: a symbolic link planted at `DIR/<id>.out` is refused, not
/// followed; a hard link to another file leaves that file alone.
#[async_test]
async fn exec_output_never_writes_through_a_planted_link() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new().await;
    let dir = f.home.tmp().join("out");
    std::fs::create_dir_all(&dir).unwrap();
    let victim = f.home.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let out_file = dir.join(format!("{INSTANCE}.out"));
    let err_file = dir.join(format!("{INSTANCE}.err"));
    std::os::unix::fs::symlink(&victim, &out_file).unwrap();
    let dir_arg = dir.display().to_string();
    let target = f.target();
    let args = [
        "exec",
        "--output",
        &dir_arg,
        &target,
        "--",
        "echo out; echo err >&2",
    ];

    let out = f.run(&args, b"").await;
    out.assert_status(255);
    out.assert_stderr_contains(format!(
        "cannot create {}: a symbolic link is there, and it is not followed",
        out_file.display()
    ));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(
        !f.sim
            .request_log()
            .iter()
            .any(|e| e.op == "SendSSHPublicKey"),
        "something ran"
    );

    // A hard link (and an earlier run's file) is replaced by a new file.
    std::fs::remove_file(&out_file).unwrap();
    std::fs::hard_link(&victim, &out_file).unwrap();
    std::fs::write(&err_file, "an earlier run\n").unwrap();
    let out = f.run(&args, b"").await;
    out.assert_success();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "out\n");
    assert_eq!(std::fs::read_to_string(&err_file).unwrap(), "err\n");
    for file in [&out_file, &err_file] {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

/// An instance ID from the API becomes a file name only if it is one.
#[async_test]
async fn exec_output_checks_instance_ids_from_the_api() {
    let mut w = World::demo();
    let mut odd = w.instances[0].clone();
    odd.id = "../../escaped".into();
    odd.private_ip = Some("10.0.1.99".into());
    odd.tags = vec![("Role".into(), "odd".into())];
    w.instances.push(odd);
    let f = Fixture::with_world(w).await;
    let dir = f.home.tmp().join("a/b/out");
    let dir_arg = dir.display().to_string();
    let target = format!("{}@tag:Role=odd", f.user());
    let out = f
        .run(&["exec", "--output", &dir_arg, &target, "--", "true"], b"")
        .await;
    out.assert_status(255);
    out.assert_stderr_contains("'../../escaped' is not an EC2 instance ID")
        .assert_stderr_contains("not used as a file name");
    assert_eq!(files_under(f.home.tmp()), Vec::<PathBuf>::new());
}

/// `restrict --allow` judges the networks together: two halves of the
/// address space are every address, refused before any call; a range
/// wider than /8 gets a warning naming it.
#[async_test]
async fn restrict_judges_the_union_of_the_allowed_networks() {
    let f = Fixture::new().await;
    for allow in [
        vec!["--allow", "0.0.0.0/1,128.0.0.0/1"],
        vec!["--allow", "0.0.0.0/2", "--allow", "64.0.0.0/2,128.0.0.0/1"],
    ] {
        let mut args = vec!["restrict", INSTANCE];
        args.extend(&allow);
        let out = f.run(&args, b"").await;
        assert_eq!(out.status, Some(2), "{allow:?}: {}", out.stderr);
        out.assert_stderr_contains("allows every IPv4 address together: that is no restriction")
            .assert_stderr_contains("128.0.0.0/1");
        assert_eq!(f.sim.request_log().len(), 0, "a call was made");
    }
    let out = f
        .run(
            &[
                "restrict",
                INSTANCE,
                "--allow",
                "0.0.0.0/2,64.0.0.0/2,203.0.113.0/24",
            ],
            b"",
        )
        .await;
    out.assert_success();
    out.assert_stderr_contains(
        "eic-ssh: warning: --allow 0.0.0.0/1 (from 0.0.0.0/2, 64.0.0.0/2) is wider than /8",
    );
    out.assert_stdout_contains("allowing only");
}

/// `-L` and `-D` beyond loopback warn before listening, as `tunnel --bind`
/// does; loopback binds do not. The port is taken on both loopbacks, so
/// every bind here fails after the warning and nothing is ever exposed.
#[async_test]
async fn local_and_dynamic_forwards_beyond_loopback_warn() {
    let f = Fixture::new().await;
    let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = v4.local_addr().unwrap().port();
    let _v6 = std::net::TcpListener::bind(("::1", port));
    let target = f.target();
    for (flag, spec, warned) in [
        ("-L", format!("*:{port}:db.internal:5432"), Some("[::]")),
        (
            "-L",
            format!("0.0.0.0:{port}:db.internal:5432"),
            Some("0.0.0.0"),
        ),
        ("-L", format!("[::]:{port}:[fd00::5]:443"), Some("[::]")),
        ("-D", format!("*:{port}"), Some("[::]")),
        ("-D", format!("0.0.0.0:{port}"), Some("0.0.0.0")),
        ("-L", format!("{port}:db.internal:5432"), None),
        ("-L", format!("localhost:{port}:db.internal:5432"), None),
        ("-D", format!("127.0.0.1:{port}"), None),
    ] {
        let out = f.run(&["-N", flag, &spec, &target], b"").await;
        assert_eq!(out.status, Some(255), "{spec}: {}", out.stderr);
        out.assert_stderr_contains("cannot listen on");
        match warned {
            Some(addr) => {
                let line = format!("eic-ssh: warning: {flag} ");
                assert!(
                    out.stderr.contains(&line)
                        && out.stderr.contains(&format!(
                            " listens on {addr}:{port}, not a loopback address: anyone who can reach it gets "
                        ))
                        && out.stderr.contains("Bind to localhost (the default) unless you mean this."),
                    "{spec}: {}",
                    out.stderr
                );
                let gives = match flag {
                    "-L" => "a connection to ",
                    _ => "a SOCKS proxy into the instance's network",
                };
                out.assert_stderr_contains(gives);
            }
            None => assert!(!out.stderr.contains("warning"), "{spec}: {}", out.stderr),
        }
    }
    assert_eq!(f.sim.request_log().len(), 0, "a call was made");
}
