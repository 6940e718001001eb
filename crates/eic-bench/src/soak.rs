//! Row 9: soak. Many connections in a row must leave nothing behind:
//!
//! * `--soak-execs` sequential `eic-ssh … -- true` (default 500): each run's
//!   peak RSS (GNU time), and the bench process's own open file descriptors
//!   and threads (it hosts the simulator, whose tunnels must all close);
//! * one `eic-ssh tunnel` listener serving `--soak-conns` connections
//!   (default 2,000), 20 at a time, each reading sshd's banner through it
//!   and closing: the listener's open fds, threads and RSS from /proc.
//!
//! Flat means: the last sample within 10% (or 2 fds / threads) of the first
//! one taken after warm-up (a tenth of the run).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::harness::{Bench, INSTANCE, progress};
use crate::process::{Input, Spawned, end_session, run};
use crate::report::Table;

/// One sample of a process's resources.
#[derive(Debug, Clone, Copy)]
struct Sample {
    after: usize,
    fds: usize,
    threads: usize,
    rss_kb: u64,
}

fn sample(pid: &str, after: usize) -> Option<Sample> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(Sample {
        after,
        fds,
        threads: usize::try_from(field("Threads:")?).ok()?,
        rss_kb: field("VmRSS:")?,
    })
}

/// Whether `last` is within 10% of `first` (with a little slack for small counts).
fn flat(first: f64, last: f64, slack: f64) -> bool {
    last <= first * 1.10 + slack
}

/// The samples from warm-up on, and the verdict for each resource.
fn judge(samples: &[Sample], warm_after: usize) -> (Vec<Sample>, bool, bool, bool) {
    let kept: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.after >= warm_after)
        .collect();
    let (Some(first), Some(last)) = (kept.first(), kept.last()) else {
        return (kept, false, false, false);
    };
    (
        kept.clone(),
        flat(first.fds as f64, last.fds as f64, 2.0),
        flat(first.threads as f64, last.threads as f64, 2.0),
        flat(first.rss_kb as f64, last.rss_kb as f64, 0.0),
    )
}

fn series(samples: &[Sample], f: impl Fn(&Sample) -> String) -> String {
    samples.iter().map(f).collect::<Vec<_>>().join(" ")
}

/// Row 9: the soak table and its targets.
pub(crate) async fn row(b: &mut Bench) -> anyhow::Result<String> {
    let mut t = Table::new(&["soak", "samples (first after warm-up … last)", "flat"]);
    let mut notes = String::new();
    execs(b, &mut t, &mut notes).await?;
    listener(b, &mut t, &mut notes).await?;
    Ok(format!(
        "9. Soak (open fds, threads, RSS: last sample within 10% of the first after warm-up)\n{}{notes}\n",
        t.render()
    ))
}

async fn execs(b: &mut Bench, t: &mut Table, notes: &mut String) -> anyhow::Result<()> {
    let n = b.cfg.soak_execs;
    progress(&format!("  {n} sequential eic-ssh … -- true"));
    let me = std::process::id().to_string();
    let every = (n / 10).max(1);
    let target = b.target();
    let mut own = Vec::new();
    let mut rss = Vec::new();
    let started = Instant::now();
    for i in 1..=n {
        let f = b.time_file();
        let r = run(
            &b.eic_warm(&[target.as_str(), "--", "true"]),
            Input::Null,
            f.as_deref(),
            Duration::from_secs(60),
        )
        .await?
        .check("eic-ssh -- true")?;
        if i % every == 0 {
            own.extend(sample(&me, i));
            if let Some(u) = r.usage {
                rss.push(Sample {
                    after: i,
                    fds: 0,
                    threads: 0,
                    rss_kb: (u.rss_mb() * 1000.0) as u64,
                });
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let (own, fds_ok, threads_ok, _) = judge(&own, every);
    let (rss, _, _, rss_ok) = judge(&rss, every);
    t.row(vec![
        format!("{n} × eic-ssh -- true: peak RSS per run, MB"),
        series(&rss, |s| format!("{:.1}", s.rss_kb as f64 / 1000.0)),
        verdict(rss_ok || rss.is_empty()),
    ]);
    t.row(vec![
        "  the simulator's process: open fds".into(),
        series(&own, |s| s.fds.to_string()),
        verdict(fds_ok),
    ]);
    t.row(vec![
        "  the simulator's process: threads".into(),
        series(&own, |s| s.threads.to_string()),
        verdict(threads_ok),
    ]);
    let _ = writeln!(
        notes,
        "   {n} runs in {secs:.0} s ({:.0} ms each); tunnels still open at the end: {}",
        secs * 1000.0 / n as f64,
        b.sim.open_tunnels()
    );
    let pass = fds_ok && threads_ok && (rss_ok || rss.is_empty());
    b.check_target(
        notes,
        "soak: sequential exec flat",
        &format!("{n} sequential exec: fds, threads, RSS flat"),
        format!(
            "fds {}→{}, threads {}→{}",
            own.first().map_or(0, |s| s.fds),
            own.last().map_or(0, |s| s.fds),
            own.first().map_or(0, |s| s.threads),
            own.last().map_or(0, |s| s.threads)
        ),
        pass,
    );
    Ok(())
}

async fn listener(b: &mut Bench, t: &mut Table, notes: &mut String) -> anyhow::Result<()> {
    const AT_ONCE: usize = 20;
    let n = b.cfg.soak_conns;
    progress(&format!(
        "  eic-ssh tunnel serving {n} connections, {AT_ONCE} at a time"
    ));
    let args: Vec<OsString> = vec![
        "tunnel".into(),
        "--local-port".into(),
        "0".into(),
        INSTANCE.into(),
    ];
    let Spawned {
        child,
        stdout,
        stderr,
    } = b.eic_warm(&args).spawn(Stdio::null(), None)?;
    let pid = child.id().context("eic-ssh tunnel has no pid")?.to_string();
    let mut lines = BufReader::new(stdout).lines();
    let every = (n / 10).max(1);
    let served = async {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .map_err(|_| anyhow!("eic-ssh tunnel printed no port within 30 s"))??
            .context("eic-ssh tunnel exited before printing its port")?;
        let port: u16 = line
            .trim()
            .parse()
            .with_context(|| format!("port {line:?}"))?;
        let mut samples = Vec::new();
        let mut failed = 0usize;
        let started = Instant::now();
        let mut done = 0;
        while done < n {
            let batch = AT_ONCE.min(n - done);
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..batch {
                set.spawn(async move {
                    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
                    let mut banner = [0u8; 8];
                    tokio::time::timeout(Duration::from_secs(30), s.read_exact(&mut banner))
                        .await
                        .map_err(|_| anyhow!("no banner within 30 s"))??;
                    if &banner != b"SSH-2.0-" {
                        bail!("not an SSH banner: {banner:?}");
                    }
                    Ok::<_, anyhow::Error>(())
                });
            }
            while let Some(r) = set.join_next().await {
                if !matches!(r, Ok(Ok(()))) {
                    failed += 1;
                }
            }
            done += batch;
            if done % every < AT_ONCE {
                samples.extend(sample(&pid, done));
            }
        }
        Ok::<_, anyhow::Error>((samples, failed, started.elapsed().as_secs_f64()))
    }
    .await;
    let (samples, failed, secs) = end_session(child, stderr, served, "eic-ssh tunnel").await?;
    let (kept, fds_ok, threads_ok, rss_ok) = judge(&samples, every);
    t.row(vec![
        format!("eic-ssh tunnel, {n} connections {AT_ONCE} at a time: open fds"),
        series(&kept, |s| s.fds.to_string()),
        verdict(fds_ok),
    ]);
    t.row(vec![
        "  threads".into(),
        series(&kept, |s| s.threads.to_string()),
        verdict(threads_ok),
    ]);
    t.row(vec![
        "  RSS, MB".into(),
        series(&kept, |s| format!("{:.1}", s.rss_kb as f64 / 1000.0)),
        verdict(rss_ok),
    ]);
    let _ = writeln!(
        notes,
        "   {n} connections in {secs:.0} s ({:.0}/s), {failed} failed",
        n as f64 / secs
    );
    b.check_target(
        notes,
        "soak: listener flat",
        &format!("tunnel listener over {n} connections: fds, threads, RSS flat, none failed"),
        format!(
            "fds {}→{}, threads {}→{}, RSS {:.1}→{:.1} MB, {failed} failed",
            kept.first().map_or(0, |s| s.fds),
            kept.last().map_or(0, |s| s.fds),
            kept.first().map_or(0, |s| s.threads),
            kept.last().map_or(0, |s| s.threads),
            kept.first().map_or(0.0, |s| s.rss_kb as f64 / 1000.0),
            kept.last().map_or(0.0, |s| s.rss_kb as f64 / 1000.0),
        ),
        fds_ok && threads_ok && rss_ok && failed == 0,
    );
    Ok(())
}

fn verdict(ok: bool) -> String {
    if ok { "yes" } else { "NO" }.into()
}
