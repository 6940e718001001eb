//! A wrong local clock: the real binary under Debian's `faketime`
//! (libfaketime), its wall clock shifted and its monotonic clock left
//! alone, against the simulator and a real sshd that keep the real time.

use serde_json::Value;

use crate::support::*;

const FAKETIME: &str = "/usr/bin/faketime";

/// `eic-ssh` under `faketime -f OFFSET`, in the fixture's environment.
fn faked(f: &Fixture, offset: &str) -> tokio::process::Command {
    assert!(
        std::path::Path::new(FAKETIME).exists(),
        "these tests need Debian's faketime (.ci/run installs it)"
    );
    let mut cmd = f.program(FAKETIME);
    cmd.env("FAKETIME_DONT_FAKE_MONOTONIC", "1").args([
        "-f",
        offset,
        env!("CARGO_BIN_EXE_eic-ssh"),
    ]);
    cmd
}

/// The statuses the simulator answered `op` with, from entry `from` of its log.
fn answers(f: &Fixture, op: &str, from: usize) -> Vec<u16> {
    f.sim.request_log()[from..]
        .iter()
        .filter(|e| e.op == op)
        .map(|e| e.status)
        .collect()
}

/// 7 minutes either way and 3 hours either way: each run's first calls are
/// refused for their time, their Date gives AWS's, the calls are signed
/// again with it (the push too, and the tunnel's URL is right the first
/// time), -v says so once in plain units, and the command runs on the real
/// sshd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_clock_offset_is_corrected_and_the_command_runs() {
    let f = Fixture::new().await;
    let target = f.target();
    for (offset, words) in [
        ("+7m", "7 min ahead of"),
        ("-7m", "7 min behind"),
        ("+3h", "3 h ahead of"),
        ("-3h", "3 h behind"),
    ] {
        let from = f.sim.request_log().len();
        let said = format!("clock {offset}");
        let out = f
            .run_cmd(
                faked(&f, offset),
                &["-v", "--no-cache", &target, "--", "echo", &said],
                b"",
            )
            .await;
        assert_eq!(
            out.stdout_str(),
            format!("{said}\n"),
            "{offset}: {}",
            out.stderr
        );
        assert_eq!(out.status, Some(0), "{offset}: {}", out.stderr);
        let told = format!("this machine's clock is {words} AWS's");
        assert_eq!(
            out.stderr.matches(&told).count(),
            1,
            "{offset}: {}",
            out.stderr
        );
        assert_eq!(
            answers(&f, "DescribeInstances", from),
            [400, 200],
            "{offset}"
        );
        assert_eq!(
            answers(&f, "SendSSHPublicKey", from),
            [400, 200],
            "{offset}"
        );
        assert_eq!(answers(&f, "OpenTunnel", from), [101], "{offset}");
    }
}

/// An answer without a Date cannot say how far off the clock is: the error
/// says the clock is off (not the credentials), and how to set it right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_refusal_without_a_date_is_blamed_on_the_clock() {
    let f = Fixture::new().await;
    f.sim.omit_date_header(true);
    let out = f
        .run_cmd(
            faked(&f, "+7m"),
            &["--no-cache", &f.target(), "--", "true"],
            b"",
        )
        .await;
    out.assert_status(255);
    // DescribeInstances or DescribeInstanceConnectEndpoints: they run side
    // by side, and the first refusal is reported.
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("eic-ssh: DescribeInstance")
            && first.ends_with(
                " failed: RequestExpired: Request has expired.: this machine's clock is probably more than 5 min off AWS's, and the answer carried no Date header to tell by how much"
            ),
        "{}",
        out.stderr
    );
    out.assert_stderr_contains(
        "eic-ssh: hint: set this machine's clock right: turn on NTP (timedatectl set-ntp true)",
    );
    out.assert_stderr_lacks("credentials");
    // Nothing to learn from: no second try. The two lookups run side by
    // side, and the first refusal ends the run, so the other may not have
    // been sent at all.
    let lookups = [
        answers(&f, "DescribeInstances", 0),
        answers(&f, "DescribeInstanceConnectEndpoints", 0),
    ];
    assert!(
        lookups.iter().all(|a| a.is_empty() || a == &[400]),
        "{lookups:?}"
    );
    assert!(lookups.iter().any(|a| a == &[400]), "{lookups:?}");
}

/// doctor under a clock 7 minutes fast: every check is made (its calls are
/// corrected too), and check 9 names the offset as a warning, which does
/// not fail the run; on the right clock it passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_the_clock_offset() {
    let f = Fixture::new().await;
    let args = ["doctor", INSTANCE, "--offline", "--json"];
    let run = |cmd| f.run_cmd(cmd, &args, b"");
    let out = run(faked(&f, "+7m")).await;
    out.assert_status(0);
    let checks: Value = serde_json::from_slice(&out.stdout).unwrap();
    let clock = &checks[8];
    assert_eq!(clock["name"], "clock", "{checks:#}");
    assert_eq!(clock["status"], "warn", "{checks:#}");
    let message = clock["message"].as_str().unwrap();
    assert!(
        message.starts_with("this machine's clock is 7 min ahead of AWS's: AWS refuses a signature more than 5 min off"),
        "{message}"
    );
    assert!(
        clock["fix"]
            .as_str()
            .unwrap()
            .contains("timedatectl set-ntp true")
    );
    // Offline, check 6 (this machine's address) is skipped; the rest pass.
    for c in checks.as_array().unwrap()[..7].iter() {
        let want = if c["id"] == 6 { "skip" } else { "pass" };
        assert_eq!(c["status"], want, "{c}");
    }

    let out = run(f.command()).await;
    let checks: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(checks[8]["status"], "pass", "{checks:#}");
}
