//! A closed stdout (`eic-ssh exec tag:… -- yes | head`) ends `exec` quietly
//! as it ends a single session: every instance's command stops, and eic-ssh
//! exits 255 with nothing on stderr.

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_eic-ssh");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_ends_exec_and_every_remote_command() {
    let f = Fixture::new().await;
    // Connect once, so that the run below is no first contact.
    let out = f.run(&[&f.target(), "--", "true"], b"").await;
    out.assert_status(0);
    let pid_file = f.home.tmp().join("remote.pid");
    // Never ends by itself: only the closed pipe can stop it.
    let remote = format!("echo $$ > {}; exec yes", pid_file.display());
    let line = format!(
        "{BIN} exec -l {} tag:Role=web -- {} | head -2; echo ${{PIPESTATUS[0]}} >&3",
        f.user(),
        shell_words::quote(&remote)
    );
    let mut bash = f.program("bash");
    bash.args(["-c", &format!("exec 3>&1; {{ {line}; }} > /dev/null")]);
    let out = f.run_cmd(bash, &[], b"").await;
    assert_eq!(out.stdout_str().trim(), "255", "{}", out.stderr);
    assert_eq!(out.stderr, "", "not quiet");
    // The remote `yes` ends too.
    remote_process_ends(&pid_file).await;
}
