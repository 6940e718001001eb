//! The end of a tunnel's maximum duration, recognised by the time it came,
//! whatever the close frame says: the code and reason the service sends
//! then are not documented, so the simulator is made to send each of
//! several.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

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
