//! Row 7: forward. Throughput through `eic-ssh -N -L` against `ssh -N -L`
//! through `eic-ssh proxy`, the bulk size each way, to a local service that
//! the instance (this machine's sshd) connects to. Target: ≥ 1.0 × ssh -L.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::{Bench, MB, progress};
use crate::process::Cmd;
use crate::report::{Table, med, spread};

/// A service that sends `n` bytes to each connection, and one that reads a
/// connection to its end and answers with the count (8 bytes, big-endian).
async fn services(n: u64) -> anyhow::Result<(u16, u16)> {
    let source = TcpListener::bind("127.0.0.1:0").await?;
    let sink = TcpListener::bind("127.0.0.1:0").await?;
    let ports = (source.local_addr()?.port(), sink.local_addr()?.port());
    tokio::spawn(async move {
        let block = vec![0x5au8; 256 * 1024];
        while let Ok((mut s, _)) = source.accept().await {
            let block = block.clone();
            tokio::spawn(async move {
                let mut left = n;
                while left > 0 {
                    let k = left.min(block.len() as u64) as usize;
                    if s.write_all(block.get(..k).unwrap_or_default())
                        .await
                        .is_err()
                    {
                        return;
                    }
                    left -= k as u64;
                }
                let _ = s.shutdown().await;
            });
        }
    });
    tokio::spawn(async move {
        while let Ok((mut s, _)) = sink.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                let mut count = 0u64;
                while let Ok(k) = s.read(&mut buf).await {
                    if k == 0 {
                        break;
                    }
                    count += k as u64;
                }
                let _ = s.write_all(&count.to_be_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    Ok(ports)
}

/// Download `n` bytes through `port`: MB/s.
async fn download(port: u16, n: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    loop {
        let k = s.read(&mut buf).await?;
        if k == 0 {
            break;
        }
        got += k as u64;
    }
    if got != n {
        bail!("downloaded {got} bytes, expected {n}");
    }
    Ok(n as f64 / MB as f64 / start.elapsed().as_secs_f64())
}

/// Upload `n` bytes through `port`: MB/s, once the far end counted them.
async fn upload(port: u16, n: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let s = TcpStream::connect(("127.0.0.1", port)).await?;
    let (mut r, mut w) = s.into_split();
    let block = vec![0xa5u8; 256 * 1024];
    let mut left = n;
    while left > 0 {
        let k = left.min(block.len() as u64) as usize;
        w.write_all(block.get(..k).unwrap_or_default()).await?;
        left -= k as u64;
    }
    w.shutdown().await?;
    let mut count = [0u8; 8];
    r.read_exact(&mut count).await?;
    let got = u64::from_be_bytes(count);
    if got != n {
        bail!("the service counted {got} bytes, expected {n}");
    }
    Ok(n as f64 / MB as f64 / start.elapsed().as_secs_f64())
}

/// Waits until something accepts on `port`.
async fn listening(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on {port} after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// A port free right now (ssh -L cannot report one it picked).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `eic-ssh -N -L 0:…:source -L 0:…:sink`: the child and its two ports.
async fn start_eic(
    b: &Bench,
    source: u16,
    sink: u16,
) -> anyhow::Result<(tokio::process::Child, u16, u16)> {
    let target = b.target();
    let (l1, l2) = (
        format!("0:127.0.0.1:{source}"),
        format!("0:127.0.0.1:{sink}"),
    );
    let cmd = b.eic_warm(&["-N", "-L", l1.as_str(), "-L", l2.as_str(), target.as_str()]);
    let mut child = tokio::process::Command::new(&cmd.program)
        .args(&cmd.args)
        .env_clear()
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting eic-ssh -N -L")?;
    let mut lines = BufReader::new(child.stderr.take().context("no stderr")?).lines();
    let mut ports = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ports.len() < 2 {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .map_err(|_| anyhow!("eic-ssh -L did not report its ports in 60 s"))??
            .ok_or_else(|| anyhow!("eic-ssh -L ended before forwarding"))?;
        if let Some(rest) = line.split("forwarding 127.0.0.1:").nth(1) {
            let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
            ports.push(port.parse::<u16>()?);
        }
    }
    // Keep draining its stderr so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, ports[0], ports[1]))
}

/// `ssh -N -L` through `eic-ssh proxy`: the child and its two ports.
async fn start_ssh(
    b: &Bench,
    source: u16,
    sink: u16,
) -> anyhow::Result<(tokio::process::Child, u16, u16)> {
    let (p1, p2) = (free_port()?, free_port()?);
    let mut args = b.openssh_proxy_opts();
    for a in [
        "-N".to_string(),
        "-o".into(),
        "ExitOnForwardFailure=yes".into(),
        "-L".into(),
        format!("{p1}:127.0.0.1:{source}"),
        "-L".into(),
        format!("{p2}:127.0.0.1:{sink}"),
        b.target(),
    ] {
        args.push(a.into());
    }
    let cmd = Cmd {
        program: "ssh".into(),
        args,
        env: b.env(&b.warm),
    };
    let child = tokio::process::Command::new(&cmd.program)
        .args(&cmd.args)
        .env_clear()
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting ssh -N -L")?;
    listening(p1).await?;
    listening(p2).await?;
    Ok((child, p1, p2))
}

/// Row 7: each direction through each forwarder, a table and the targets.
pub(crate) async fn row(b: &mut Bench) -> anyhow::Result<String> {
    let n = b.cfg.bulk_bytes;
    let (source, sink) = services(n).await?;
    let mut out = format!(
        "7. Forward: {} MB each way through one forwarded connection, {} iteration(s)\n",
        n / MB,
        b.cfg.bulk_iters
    );
    progress("  forward: starting eic-ssh -L and ssh -L");
    let (eic, eic_down, eic_up) = start_eic(b, source, sink).await?;
    let (ssh, ssh_down, ssh_up) = start_ssh(b, source, sink).await?;
    let cases = [
        ("(a) eic-ssh -N -L", eic_down, eic_up),
        ("(b) ssh -N -L + eic-ssh proxy", ssh_down, ssh_up),
    ];
    for up in [false, true] {
        let dir = if up { "upload" } else { "download" };
        progress(&format!("  forward, {dir}"));
        let mut mbps: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
        for _ in 0..b.cfg.bulk_iters {
            for (i, (_, down_port, up_port)) in cases.iter().enumerate() {
                let r = if up {
                    upload(*up_port, n).await?
                } else {
                    download(*down_port, n).await?
                };
                if let Some(v) = mbps.get_mut(i) {
                    v.push(r);
                }
            }
        }
        let ssh_med = mbps.get(1).and_then(|v| med(v));
        let mut t = Table::new(&[dir, "MB/s median (min–max)", "× ssh -L"]);
        for ((label, _, _), v) in cases.iter().zip(&mbps) {
            let ratio = match (med(v), ssh_med) {
                (Some(x), Some(s)) if s > 0.0 => format!("{:.2}", x / s),
                _ => "—".into(),
            };
            t.row(vec![(*label).into(), spread(v, 1), ratio]);
        }
        out.push_str(&t.render());
        if let (Some(a), Some(s)) = (mbps.first().and_then(|v| med(v)), ssh_med) {
            b.check_target(
                &mut out,
                &format!("-L ≥ 1.0 × ssh -L, {dir}"),
                "(a) ≥ 1.0 × (b)",
                format!("{:.2}× ({a:.1} vs {s:.1} MB/s)", a / s),
                a >= s,
            );
        }
        out.push('\n');
    }
    drop((eic, ssh));
    Ok(out)
}
