//! Row 2: bulk. Throughput, CPU per GB and peak RSS of a download and an
//! upload through eic-ssh's embedded client, ssh + `eic-ssh proxy`, plain
//! ssh and ssh + a do-nothing ProxyCommand (`socat`, the floor), at no
//! added latency and then at `--frame-latency-ms` per relayed message.

use std::time::Duration;

use anyhow::bail;

use crate::harness::{Bench, MB, progress};
use crate::process::{Input, Usage, run, wait_usage};
use crate::report::{Table, med, spread};

/// The way the bytes go. `Some(i)` is the `i`th `--versus` binary in
/// place of the eic-ssh under test.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Via {
    Embedded(Option<usize>),
    Proxy(Option<usize>),
    Plain,
    Relay,
}

impl Via {
    fn label(self, b: &Bench) -> String {
        let versus = |i: usize| {
            b.versus
                .get(i)
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        match self {
            Via::Embedded(None) => "(a) eic-ssh embedded client".into(),
            Via::Proxy(None) => "(b) ssh + eic-ssh proxy".into(),
            Via::Plain => "(c) plain ssh straight to sshd".into(),
            Via::Relay if b.socat.is_some() => "(d) ssh + socat (floor)".into(),
            Via::Relay => "(d) ssh + plain TCP relay (floor; no socat)".into(),
            Via::Embedded(Some(i)) => format!("(a{}) embedded client of {}", i + 1, versus(i)),
            Via::Proxy(Some(i)) => format!("(b{}) ssh + proxy of {}", i + 1, versus(i)),
        }
    }
}

/// The cases in table order: [`report`] finds (b), (c) and (d) by index;
/// each `--versus` binary's embedded client and proxy come after them.
fn vias(b: &Bench) -> Vec<Via> {
    let mut v = vec![
        Via::Embedded(None),
        Via::Proxy(None),
        Via::Plain,
        Via::Relay,
    ];
    for i in 0..b.versus.len() {
        v.extend([Via::Embedded(Some(i)), Via::Proxy(Some(i))]);
    }
    v
}

/// One case's samples over the iterations.
#[derive(Default, Clone)]
struct BulkSamples {
    mbps: Vec<f64>,
    /// eic-ssh's own CPU seconds per GB.
    eic_cpu: Vec<f64>,
    /// The ssh client's CPU seconds per GB.
    ssh_cpu: Vec<f64>,
    /// eic-ssh's peak RSS, MB.
    eic_rss: Vec<f64>,
}

/// One transfer: MB/s, and what GNU time saw of eic-ssh (or the relay) and
/// of the ssh client.
async fn bulk_once(
    b: &Bench,
    via: Via,
    upload: bool,
) -> anyhow::Result<(f64, Option<Usage>, Option<Usage>)> {
    let n = b.cfg.bulk_bytes;
    let data = b.data.to_string_lossy().into_owned();
    let remote = if upload {
        "wc -c".to_string()
    } else {
        format!("cat {data}")
    };
    let input = if upload {
        Input::File(b.data.clone())
    } else {
        Input::Null
    };
    let limit = Duration::from_secs(1200);
    let outer = b.time_file();
    // The ProxyCommand's own time file.
    let inner = match via {
        Via::Proxy(_) | Via::Relay => b.time_file(),
        Via::Embedded(_) | Via::Plain => None,
    };
    let cmd = match via {
        Via::Embedded(exe) => {
            let target = b.target();
            let mut args = vec![target.as_str(), "--"];
            args.extend(remote.split(' '));
            let mut cmd = b.eic_warm(&args);
            if let Some(p) = exe.and_then(|i| b.versus.get(i)) {
                cmd.program = p.clone().into();
            }
            cmd
        }
        Via::Proxy(exe) => {
            let other = exe.and_then(|i| b.versus.get(i)).map(|p| p.as_path());
            b.ssh_proxy_of(other, &[], &remote, inner.as_deref())
        }
        Via::Relay => b.ssh_floor(&remote, inner.as_deref())?,
        Via::Plain => b.ssh_direct(&[], &remote),
    };
    let r = run(&cmd, input, outer.as_deref(), limit).await?;
    let (eic, ssh) = match via {
        Via::Embedded(_) => (r.usage, None),
        Via::Proxy(_) | Via::Relay => {
            let proxy = match &inner {
                Some(f) => wait_usage(f, Duration::from_secs(10)).await,
                None => None,
            };
            (proxy, r.usage)
        }
        Via::Plain => (None, r.usage),
    };
    let r = r.check(&via.label(b))?;
    let moved = if upload {
        String::from_utf8_lossy(&r.stdout)
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    } else {
        r.bytes
    };
    if moved != n {
        bail!(
            "{}: moved {moved} bytes, expected {n}; stderr: {}",
            via.label(b),
            r.stderr.trim()
        );
    }
    let mbps = n as f64 / MB as f64 / r.wall.as_secs_f64();
    Ok((mbps, eic, ssh))
}

/// Row 2: each direction at each message latency, a table and its targets.
pub(crate) async fn row(b: &mut Bench) -> anyhow::Result<String> {
    let n = b.cfg.bulk_bytes;
    let gb = n as f64 / 1e9;
    let mut out = format!(
        "2. Bulk: {} MB each way, {} iteration(s); MB/s = 10^6 bytes per wall-clock second from spawn to exit\n   download = remote `cat FILE` into the bench; upload = FILE on stdin into remote `wc -c`\n",
        n / MB,
        b.cfg.bulk_iters
    );
    for frame in [Duration::ZERO, b.cfg.frame_latency] {
        b.sim.set_frame_latency(frame);
        let frame_ms = frame.as_secs_f64() * 1e3;
        progress(&format!("  bulk at {frame_ms:.0} ms per relayed message"));
        for upload in [false, true] {
            let vias = vias(b);
            let mut samples = vec![BulkSamples::default(); vias.len()];
            for _ in 0..b.cfg.bulk_iters {
                for (i, via) in vias.iter().enumerate() {
                    let (mbps, eic, ssh) = bulk_once(b, *via, upload).await?;
                    let Some(s) = samples.get_mut(i) else {
                        continue;
                    };
                    s.mbps.push(mbps);
                    if let Some(u) = eic {
                        s.eic_cpu.push(u.cpu() / gb);
                        s.eic_rss.push(u.rss_mb());
                        match via {
                            Via::Proxy(None) => b.proxy_rss.push(u.max_rss_kb as f64),
                            Via::Embedded(None) => b.embedded_rss.push(u.max_rss_kb as f64),
                            _ => {}
                        }
                    }
                    if let Some(u) = ssh {
                        s.ssh_cpu.push(u.cpu() / gb);
                    }
                }
            }
            let dir = if upload { "upload" } else { "download" };
            report(b, &mut out, &samples, &format!("{dir}, {frame_ms:.0} ms"));
        }
    }
    b.sim.set_frame_latency(Duration::ZERO);
    Ok(out)
}

/// One direction at one latency (`case`, e.g. `upload, 10 ms`): the table
/// and its targets.
fn report(b: &mut Bench, out: &mut String, samples: &[BulkSamples], case: &str) {
    let mbps = |i: usize| samples.get(i).and_then(|s| med(&s.mbps));
    let cpu = |i: usize| samples.get(i).and_then(|s| med(&s.eic_cpu));
    let plain = mbps(2);
    let mut t = Table::new(&[
        &format!("{case}/message"),
        "MB/s median (min–max)",
        "× (c)",
        "eic-ssh/relay CPU s/GB",
        "ssh CPU s/GB",
        "eic-ssh/relay peak RSS MB",
    ]);
    for (via, s) in vias(b).iter().zip(samples) {
        let ratio = match (med(&s.mbps), plain) {
            (Some(x), Some(p)) if p > 0.0 => format!("{:.2}", x / p),
            _ => "—".into(),
        };
        t.row(vec![
            via.label(b),
            spread(&s.mbps, 1),
            ratio,
            spread(&s.eic_cpu, 2),
            spread(&s.ssh_cpu, 2),
            spread(&s.eic_rss, 1),
        ]);
    }
    out.push_str(&t.render());
    if let (Some(a), Some(p)) = (mbps(0), mbps(1)) {
        b.check_target(
            out,
            &format!("embedded ≥ 1.0 × ssh+proxy throughput, {case}"),
            "(a) ≥ 1.0 × (b)",
            format!("{:.2}× ({a:.1} vs {p:.1} MB/s)", a / p),
            a >= p,
        );
    }
    if let (Some(cpu), Some(floor)) = (cpu(1), cpu(3)) {
        b.check_target(
            out,
            &format!("proxy CPU ≤ floor + 0.3 s/GB, {case}"),
            "(b)'s proxy CPU ≤ (d)'s + 0.3 s/GB",
            format!(
                "{cpu:.2} vs floor {floor:.2}: floor {:+.2} CPU-s/GB",
                cpu - floor
            ),
            cpu <= floor + 0.3,
        );
    }
    out.push('\n');
}
