//! A closed stdout (`eic-ssh web-1 -- cmd | head`) ends eic-ssh quietly, as
//! it ends ssh, and ends the remote command too.

use std::time::Duration;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_eic-ssh");

/// Run `bash -c line` with the fixture's environment; its stdout is the
/// exit status of the pipeline's first command.
async fn pipeline(f: &Fixture, line: &str) -> (i32, String) {
    let mut bash = f.program("bash");
    bash.args([
        "-c",
        &format!("{line} > /dev/null; echo ${{PIPESTATUS[0]}}"),
    ]);
    let out = f.run_cmd(bash, &[], b"").await;
    let status = out
        .stdout_str()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{line}: {:?} {}", out.stdout_str(), out.stderr));
    (status, out.stderr)
}

#[async_test]
async fn a_closed_stdout_ends_eic_ssh_quietly_as_it_ends_ssh() {
    let f = Fixture::new().await;
    let config = crate::openssh::openssh_setup(&f, "").await;
    // Connect once, so that neither run below is a first contact.
    let out = f.run(&[&f.target(), "--", "true"], b"").await;
    out.assert_success();
    let pid_file = f.home.tmp().join("remote.pid");
    for (i, remote) in [
        "seq 1 1000000".to_owned(),
        // Never ends by itself: only the closed pipe stops it.
        format!("echo $$ > {}; exec yes", pid_file.display()),
    ]
    .iter()
    .enumerate()
    {
        let quoted = shell_words::quote(remote);
        let ssh = format!(
            "ssh -F {} {} {quoted} | head -2",
            config.display(),
            f.target()
        );
        let ours = format!("{BIN} {} -- {quoted} | head -2", f.target());
        let (ssh_status, ssh_err) = pipeline(&f, &ssh).await;
        let (status, err) = pipeline(&f, &ours).await;
        assert_eq!(
            status, ssh_status,
            "{remote}: ssh said {ssh_err:?}, eic-ssh {err:?}"
        );
        assert_eq!(err, "", "{remote}: not quiet");
        assert_eq!(ssh_err, "", "{remote}: ssh was not quiet");
        if i == 1 {
            // The remote `yes` ends too.
            remote_process_ends(&pid_file).await;
        }
    }
}

/// The other commands, with stdout a pipe whose reader has already gone:
/// no panic, no "Broken pipe", exit 141 (as a program that SIGPIPE ends).
#[async_test]
async fn local_output_to_a_closed_pipe_ends_quietly() {
    let f = Fixture::new().await;
    let cases: &[&[&str]] = &[
        &["ls"],
        &["ls", "--json"],
        &["doctor", INSTANCE, "--offline"],
        &["restrict", INSTANCE, "--allow", "203.0.113.0/24"],
        &["cache", "path"],
        &["ssh-config"],
        &["man"],
        &["completions", "bash"],
        &["exec", &f.target(), "--json", "--", "true"],
    ];
    for args in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = f.command();
        cmd.args(*args)
            .stdin(std::process::Stdio::null())
            .stdout(writer)
            .stderr(std::process::Stdio::piped());
        let child = cmd.spawn().unwrap();
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("Broken pipe") && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    }
}
