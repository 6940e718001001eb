//! Row 4: memory. Peak RSS of `eic-ssh … -- true`, of `eic-ssh proxy`
//! during row 2's transfers, and of one `eic-ssh tunnel` listener carrying
//! concurrent transfers.

use std::ffi::OsString;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::harness::{Bench, INSTANCE, MB, progress};
use crate::process::{Input, Spawned, end_session, run, run_ok};
use crate::report::{Table, spread};

/// Row 4: the RSS table and the proxy's target.
pub(crate) async fn row(b: &mut Bench) -> anyhow::Result<String> {
    let mut t = Table::new(&["process", "peak RSS MB", "notes"]);
    let mut notes = String::new();

    // eic-ssh -- true
    let target = b.target();
    let mut rss = Vec::new();
    for _ in 0..3 {
        let f = b.time_file();
        let r = run(
            &b.eic_warm(&[target.as_str(), "--", "true"]),
            Input::Null,
            f.as_deref(),
            Duration::from_secs(60),
        )
        .await?
        .check("eic-ssh -- true")?;
        if let Some(u) = r.usage {
            rss.push(u.rss_mb());
        }
    }
    t.row(vec![
        "eic-ssh … -- true (warm)".into(),
        if rss.is_empty() {
            "— (needs GNU time)".into()
        } else {
            spread(&rss, 1)
        },
        "3 runs, GNU time %M".into(),
    ]);

    // eic-ssh proxy, and the embedded client beside it, during row 2.
    let peak = |v: &[f64]| v.iter().copied().reduce(f64::max).map(|kb| kb / 1000.0);
    let embedded = peak(&b.embedded_rss);
    if let Some(mb) = embedded {
        t.row(vec![
            "eic-ssh embedded client during the bulk transfers".into(),
            format!("{mb:.1}"),
            format!("max of {} runs (row 2)", b.embedded_rss.len()),
        ]);
    }
    match peak(&b.proxy_rss) {
        Some(mb) => {
            t.row(vec![
                "eic-ssh proxy during the bulk transfers".into(),
                format!("{mb:.1}"),
                format!("max of {} runs (row 2)", b.proxy_rss.len()),
            ]);
            let beside = embedded
                .map(|e| format!(" (the embedded client: {e:.1} MB)"))
                .unwrap_or_default();
            b.check_target(
                &mut notes,
                "proxy peak RSS ≤ 15 MB",
                "proxy peak RSS ≤ 15 MB",
                format!("{mb:.1} MB{beside}"),
                mb <= 15.0,
            );
        }
        None => t.row(vec![
            "eic-ssh proxy during the bulk transfers".into(),
            "—".into(),
            "run row 2 (with GNU time) for this".into(),
        ]),
    }

    tunnel(b, &mut t).await?;
    Ok(format!("4. Peak RSS (VmHWM)\n{}{notes}\n", t.render()))
}

/// `--tunnel-conns` concurrent ssh transfers through one `eic-ssh tunnel`
/// listener: its peak RSS and CPU (from /proc), and the aggregate rate, as
/// a row of `t`.
async fn tunnel(b: &Bench, t: &mut Table) -> anyhow::Result<()> {
    let conns = b.cfg.tunnel_conns;
    let each = b.cfg.tunnel_bytes;
    progress(&format!(
        "  eic-ssh tunnel with {conns} concurrent {} MB transfers",
        each / MB
    ));
    let pubkey = b.key.with_extension("pub");
    let args: Vec<OsString> = vec![
        "tunnel".into(),
        "--local-port".into(),
        "0".into(),
        "--push-key".into(),
        "--public-key".into(),
        pubkey.into(),
        "-l".into(),
        b.user.clone().into(),
        INSTANCE.into(),
    ];
    let Spawned {
        child,
        stdout,
        stderr,
    } = b.eic_warm(&args).spawn(Stdio::null(), None)?;
    let pid = child.id().context("eic-ssh tunnel has no pid")?;
    let mut lines = BufReader::new(stdout).lines();
    let listened = async {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .map_err(|_| anyhow!("eic-ssh tunnel printed no port within 30 s"))??
            .context("eic-ssh tunnel exited before printing its port")?;
        let port: u16 = line
            .trim()
            .parse()
            .with_context(|| format!("port {line:?}"))?;
        let remote = format!("head -c {each} /dev/zero");
        let alias = format!("HostKeyAlias={INSTANCE}");
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..conns {
            let opts = vec![
                "-p".to_string(),
                port.to_string(),
                "-o".into(),
                alias.clone(),
                "-o".into(),
                "ConnectTimeout=30".into(),
            ];
            let cmd = b.ssh(&opts, &format!("{}@127.0.0.1", b.user), &remote);
            set.spawn(async move {
                run_ok(&cmd, "ssh through eic-ssh tunnel", Duration::from_secs(600)).await
            });
        }
        let mut total = 0u64;
        while let Some(r) = set.join_next().await {
            let r = r??;
            if r.bytes != each {
                bail!("a transfer moved {} bytes, expected {each}", r.bytes);
            }
            total += r.bytes;
        }
        let secs = start.elapsed().as_secs_f64();
        Ok::<_, anyhow::Error>((total, secs))
    }
    .await;
    let usage = proc_usage(pid, clock_ticks());
    let (total, secs) = end_session(child, stderr, listened, "eic-ssh tunnel").await?;
    let label = format!("eic-ssh tunnel, {conns} concurrent transfers");
    match usage {
        Some((cpu, hwm)) => t.row(vec![
            label,
            format!("{:.1}", hwm as f64 / 1000.0),
            format!(
                "{} MB in {secs:.1} s = {:.0} MB/s aggregate; {:.2} CPU-s/GB (/proc)",
                total / MB,
                total as f64 / MB as f64 / secs,
                cpu / (total as f64 / 1e9)
            ),
        ]),
        None => t.row(vec![label, "—".into(), "/proc/<pid> unreadable".into()]),
    }
    Ok(())
}

/// CPU seconds and peak RSS (VmHWM, kB) of a live process, from /proc.
fn proc_usage(pid: u32, clock_ticks: f64) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses: state is
    // field 3, utime 14 and stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(((utime + stime) / clock_ticks, hwm))
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`, else 100).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
