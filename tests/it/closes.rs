//! How the endpoint closes a tunnel, and what the user is told: the end
//! of the maximum duration, recognised by the time it came whatever the
//! close frame says (the code and reason the service sends then are not
//! documented, so the simulator is made to send each of several), and the
//! reasons it gives for other closes.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use eic_sim::{Cut, Direction};

use crate::interactive::Pane;
use crate::support::*;

/// What the endpoint may send at the cap: a normal close with its own
/// words, the simulator's old guess, and an error close.
const CLOSES: [(u16, &str); 3] = [
    (1000, "Session ended"),
    (1001, "Tunnel closed: maximum tunnel duration reached"),
    (1011, ""),
];

/// The message for a close at a 2 s cap: the code, and the reason when
/// there is one.
fn said(code: u16, reason: &str) -> String {
    let reason = match reason {
        "" => String::new(),
        r => format!(": {r}"),
    };
    format!(
        "eic-ssh: the endpoint closed the tunnel at its maximum duration of 2 s (code {code}){reason}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_is_told_by_time_in_the_embedded_session() {
    let f = Fixture::new().await;
    let target = f.target();
    for (code, reason) in CLOSES {
        f.sim.set_cap_close(code, reason);
        let out = f
            .run(
                &[
                    "--max-tunnel-duration",
                    "2",
                    &target,
                    "--",
                    "echo started; sleep 20",
                ],
                b"",
            )
            .await;
        assert_eq!(out.status, Some(255), "{code}: {}", out.stderr);
        assert_eq!(out.stdout_str(), "started\n", "{code}");
        assert!(
            out.stderr.contains(&said(code, reason)),
            "{code}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("eic-ssh: hint: reconnect to carry on"),
            "{code}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("mid-stream"), "{code}: {}", out.stderr);
    }
}

/// `eic-ssh proxy` (OpenSSH's ProxyCommand) with its stdin held open: the
/// instance's banner comes through, then the endpoint closes at the cap,
/// and proxy says why on stderr and exits 255, even on a normal close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_is_told_by_time_in_proxy() {
    let f = Fixture::new().await;
    for (code, reason) in CLOSES {
        f.sim.set_cap_close(code, reason);
        let mut cmd = f.command();
        cmd.args(["proxy", "--no-push", "--max-tunnel-duration", "2", INSTANCE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        // Held open: the relay ends only because the endpoint closed.
        let _stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let run = async {
            let mut got = Vec::new();
            let mut err = String::new();
            let (read, _) = tokio::join!(
                stdout.read_to_end(&mut got),
                stderr.read_to_string(&mut err)
            );
            read.unwrap();
            (child.wait().await.unwrap(), got, err)
        };
        let (status, got, err) = tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .expect("proxy ends at the cap");
        assert!(got.starts_with(b"SSH-2.0-"), "{code}: {err}");
        assert_eq!(status.code(), Some(255), "{code}: {err}");
        assert!(err.contains(&said(code, reason)), "{code}: {err}");
    }
}

/// A close before SSH began. "Unable to connect to target" (the service's
/// words when the instance refuses or drops the connection) and the
/// simulator's own text get the hint about sshd and the security group,
/// and doctor's; any other reason is shown as it came, without its control
/// characters, and no guess is added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_reasons_are_shown_and_the_known_one_explained() {
    let f = Fixture::new().await;
    let target = f.target();
    let doctor = format!("eic-ssh: hint: `eic-ssh doctor {INSTANCE}` checks");
    let cases = [
        (
            1011,
            "Unable to connect to target",
            "Unable to connect to target",
            true,
        ),
        (
            1011,
            "Connection to the instance timed out",
            "Connection to the instance timed out",
            true,
        ),
        (
            1008,
            "Policy \x1b]0;owned\x07says \x1b[31mno\u{202e}",
            "Policy ]0;ownedsays [31mno",
            false,
        ),
    ];
    for (code, reason, shown, known) in cases {
        // The first bytes from the instance (its banner) never arrive: the
        // endpoint closes instead.
        f.sim.cut_next_tunnel(Cut {
            direction: Direction::ToClient,
            after: 0,
            close: Some((code, reason.to_string())),
        });
        let out = f.run(&["--no-cache", &target, "--", "true"], b"").await;
        assert_eq!(out.status, Some(255), "{shown}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "eic-ssh: the tunnel was closed by the endpoint (code {code}): {shown}\n"
            )),
            "{shown}: {:?}",
            out.stderr
        );
        let hint = "eic-ssh: hint: the endpoint could not connect to the instance: check that sshd is running on it and that the instance's security group allows the port from the endpoint";
        assert_eq!(out.stderr.contains(hint), known, "{shown}: {}", out.stderr);
        assert!(out.stderr.contains(&doctor), "{shown}: {}", out.stderr);
    }
}

/// An interactive session whose tunnel the endpoint closes while a command
/// is half typed at the prompt: the message starts at column 0, on a line
/// of its own below the typed text (it used to run on after it:
/// `echo half-typedeic-ssh: …`). The screen is read with wrapped lines
/// joined, so neither the prompt nor the pane's width matters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_closing_message_starts_a_line_of_its_own() {
    let f = Fixture::new().await;
    let pane = Pane::start(&f, &format!("--warn-before '' {}", f.target()));
    pane.type_line("echo $((40+2))R");
    pane.wait_for("42R").await;
    pane.keys(&["-l", "echo half-typed"]);
    pane.wait_for("echo half-typed").await;
    f.sim.close_tunnels(1011, "Going away");
    assert_eq!(pane.status(Duration::from_secs(20)).await, 255);
    let screen = pane.screen();
    let lines: Vec<&str> = screen.lines().collect();
    let said = lines
        .iter()
        .position(|l| l.contains("the tunnel was closed by the endpoint (code 1011): Going away"))
        .unwrap_or_else(|| panic!("no closing message:\n{screen}"));
    assert!(
        lines[said].starts_with("eic-ssh: the tunnel was closed by the endpoint"),
        "{screen}"
    );
    assert!(
        lines[..said].iter().any(|l| l.ends_with("echo half-typed")),
        "{screen}"
    );
}
