//! Row 3: keystrokes. The round trip of one typed byte and its echo in a
//! PTY session running `cat`, through eic-ssh, ssh + `eic-ssh proxy` and
//! plain ssh.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStdout;

use crate::harness::{Bench, progress};
use crate::process::{Cmd, Spawned, end_session};
use crate::report::{Table, stats};

/// Keystrokes typed on one line before it is sent (the tty's line buffer
/// holds 4095 characters in canonical mode).
const LINE: usize = 200;

/// Reads from `r` until `received` reaches `expected`.
async fn wait_for(
    r: &mut ChildStdout,
    buf: &mut [u8],
    received: &mut usize,
    expected: usize,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    while *received < expected {
        let n = tokio::time::timeout_at(deadline, r.read(buf))
            .await
            .map_err(|_| anyhow!("no echo within {limit:?} ({received} of {expected} bytes)"))??;
        if n == 0 {
            bail!("the session ended after {received} of {expected} bytes");
        }
        *received += n;
    }
    Ok(())
}

/// Types `n` single bytes into a PTY session running `cat`, each only after
/// the previous one's echo came back, and returns each round trip in ms.
async fn keystrokes(cmd: &Cmd, n: usize) -> anyhow::Result<Vec<f64>> {
    let Spawned {
        mut child,
        mut stdout,
        stderr,
    } = cmd.spawn(Stdio::piped(), None)?;
    let mut stdin = child.stdin.take().context("no stdin pipe")?;
    let typed = async {
        let mut buf = vec![0u8; 4096];
        let (mut received, mut expected, mut line) = (0usize, 0usize, 0usize);
        let mut samples = Vec::with_capacity(n);
        // Keystroke 0 is untimed: it waits for the session to be up.
        for i in 0..=n {
            if line >= LINE {
                // Enter: its echo "\r\n", then cat's copy of the line + "\r\n".
                stdin.write_all(b"\n").await?;
                stdin.flush().await?;
                expected += 2 + line + 2;
                line = 0;
                wait_for(
                    &mut stdout,
                    &mut buf,
                    &mut received,
                    expected,
                    Duration::from_secs(10),
                )
                .await?;
            }
            let t0 = Instant::now();
            stdin.write_all(b"a").await?;
            stdin.flush().await?;
            expected += 1;
            line += 1;
            let limit = Duration::from_secs(if i == 0 { 60 } else { 10 });
            wait_for(&mut stdout, &mut buf, &mut received, expected, limit).await?;
            if i > 0 {
                samples.push(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
        Ok::<_, anyhow::Error>(samples)
    }
    .await;
    end_session(child, stderr, typed, &cmd.describe()).await
}

/// Row 3: one session per case, the table and the overhead target.
pub(crate) async fn row(b: &mut Bench) -> anyhow::Result<String> {
    let n = b.cfg.keystrokes;
    let target = b.target();
    let cases = [
        (
            "eic-ssh -t -e none … -- cat",
            b.eic_warm(&["-t", "-e", "none", target.as_str(), "--", "cat"]),
        ),
        (
            "ssh -tt + eic-ssh proxy … cat",
            b.ssh_proxy(&["-tt"], "cat", None),
        ),
        ("plain ssh -tt … cat", b.ssh_direct(&["-tt"], "cat")),
    ];
    let mut results = Vec::new();
    for (label, cmd) in &cases {
        progress(&format!("  {label}"));
        results.push((*label, keystrokes(cmd, n).await?));
    }
    let plain = results.last().and_then(|(_, s)| stats(s));
    let mut t = Table::new(&[
        "session (remote pty echoes, no sim latency)",
        "median ms",
        "p99 ms",
        "min–max ms",
        "median overhead vs plain ssh",
    ]);
    for (label, s) in &results {
        let Some(st) = stats(s) else { continue };
        let over = plain.map_or("—".into(), |p| format!("{:+.3} ms", st.median - p.median));
        t.row(vec![
            (*label).into(),
            format!("{:.3}", st.median),
            format!("{:.3}", st.p99),
            format!("{:.3}–{:.3}", st.min, st.max),
            over,
        ]);
    }
    let mut out = format!(
        "3. Keystroke round trip: one byte written, its echo read, {n} times per session, no sleeps\n"
    );
    out.push_str(&t.render());
    if let (Some(e), Some(p)) = (results.first().and_then(|(_, s)| stats(s)), plain) {
        let over = e.median - p.median;
        b.check_target(
            &mut out,
            "median keystroke overhead < 1 ms",
            "median overhead < 1 ms",
            format!(
                "{over:+.3} ms ({:.3} vs {:.3} ms; p99 {:.3} vs {:.3})",
                e.median, p.median, e.p99, p.p99
            ),
            over < 1.0,
        );
    }
    out.push('\n');
    Ok(out)
}
