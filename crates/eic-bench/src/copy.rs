//! Row 6: copy. `eic-ssh cp` against OpenSSH's `scp` and `sftp` through
//! `eic-ssh proxy`, the bulk size each way. Target: cp ≥ 1.0 × scp.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::harness::{Bench, MB, progress};
use crate::process::{Cmd, run_ok};
use crate::report::{Table, med, spread};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tool {
    Cp,
    Scp,
    Sftp,
}

impl Tool {
    fn label(self) -> &'static str {
        match self {
            Tool::Cp => "(a) eic-ssh cp",
            Tool::Scp => "(b) scp + eic-ssh proxy",
            Tool::Sftp => "(c) sftp + eic-ssh proxy",
        }
    }
}

const TOOLS: [Tool; 3] = [Tool::Cp, Tool::Scp, Tool::Sftp];

/// The command that copies `from` to `to` (one of them remote, written
/// `HOST:PATH` with the tool's own host syntax).
fn command(b: &Bench, tool: Tool, upload: bool, local: &str, remote: &str) -> anyhow::Result<Cmd> {
    let target = b.target();
    let remote_arg = format!("{target}:{remote}");
    Ok(match tool {
        Tool::Cp => {
            let (from, to) = if upload {
                (local.to_owned(), remote_arg)
            } else {
                (remote_arg, local.to_owned())
            };
            b.eic_warm(&["cp", "-q", from.as_str(), to.as_str()])
        }
        Tool::Scp => {
            let mut args = b.openssh_proxy_opts();
            args.push("-q".into());
            let (from, to) = if upload {
                (local.to_owned(), remote_arg)
            } else {
                (remote_arg, local.to_owned())
            };
            args.push(from.into());
            args.push(to.into());
            Cmd {
                program: "scp".into(),
                args,
                env: b.env(&b.warm),
            }
        }
        Tool::Sftp => {
            let batch = b.file("sftp-batch");
            let line = if upload {
                format!("put {local} {remote}\n")
            } else {
                format!("get {remote} {local}\n")
            };
            std::fs::write(&batch, line)?;
            let mut args = b.openssh_proxy_opts();
            args.push("-q".into());
            args.push("-b".into());
            args.push(batch.into_os_string());
            args.push(OsString::from(target));
            Cmd {
                program: "sftp".into(),
                args,
                env: b.env(&b.warm),
            }
        }
    })
}

/// One copy: MB/s.
async fn once(b: &Bench, tool: Tool, upload: bool) -> anyhow::Result<f64> {
    let n = b.cfg.bulk_bytes;
    let data = b.data.to_string_lossy().into_owned();
    // The instance is this machine: the "remote" file is a local path.
    let (local, remote) = if upload {
        (data, b.file("copied-up").to_string_lossy().into_owned())
    } else {
        (b.file("copied-down").to_string_lossy().into_owned(), data)
    };
    let cmd = command(b, tool, upload, &local, &remote)?;
    let start = Instant::now();
    run_ok(&cmd, tool.label(), Duration::from_secs(1200)).await?;
    let wall = start.elapsed();
    let written = if upload { &remote } else { &local };
    let got = std::fs::metadata(written).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(written);
    if got != n {
        bail!("{}: wrote {got} bytes, expected {n}", tool.label());
    }
    Ok(n as f64 / MB as f64 / wall.as_secs_f64())
}

/// Row 6: each direction, a table and the target.
pub(crate) async fn row(b: &mut Bench) -> anyhow::Result<String> {
    let n = b.cfg.bulk_bytes;
    let mut out = format!(
        "6. Copy: a {} MB file each way, {} iteration(s); MB/s = 10^6 bytes per wall-clock second from spawn to exit\n",
        n / MB,
        b.cfg.bulk_iters
    );
    for upload in [false, true] {
        let dir = if upload { "upload" } else { "download" };
        progress(&format!("  copy, {dir}"));
        let mut mbps: Vec<Vec<f64>> = vec![Vec::new(); TOOLS.len()];
        for _ in 0..b.cfg.bulk_iters {
            for (i, tool) in TOOLS.iter().enumerate() {
                let r = once(b, *tool, upload).await?;
                if let Some(v) = mbps.get_mut(i) {
                    v.push(r);
                }
            }
        }
        let scp = mbps.get(1).and_then(|v| med(v));
        let mut t = Table::new(&[dir, "MB/s median (min–max)", "× scp"]);
        for (tool, v) in TOOLS.iter().zip(&mbps) {
            let ratio = match (med(v), scp) {
                (Some(x), Some(s)) if s > 0.0 => format!("{:.2}", x / s),
                _ => "—".into(),
            };
            t.row(vec![tool.label().into(), spread(v, 1), ratio]);
        }
        out.push_str(&t.render());
        if let (Some(a), Some(s)) = (mbps.first().and_then(|v| med(v)), scp) {
            b.check_target(
                &mut out,
                &format!("cp ≥ 1.0 × scp, {dir}"),
                "(a) ≥ 1.0 × (b)",
                format!("{:.2}× ({a:.1} vs {s:.1} MB/s)", a / s),
                a >= s,
            );
        }
        out.push('\n');
    }
    Ok(out)
}
