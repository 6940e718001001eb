//! Row 1: connect. Process start to the first byte of `echo x`, for eic-ssh
//! cold, warm (by ID and by Name tag) and with every lookup skipped, against
//! plain ssh, at no added
//! latency and then at `--latency-ms`; the sequential round trips on the
//! critical path from the simulator's request log; and what the console
//! host-key check costs on a first contact.

use std::time::Duration;

use anyhow::{Context, bail};
use eic_sim::LogEntry;

use crate::harness::{Bench, EICE_ID, PRIVATE_IP, progress};
use crate::process::run_ok;
use crate::report::{Table, med, spread};

/// OpenSSH 9.2's default: the post-quantum hybrid first.
const DEFAULT_KEX: &str = "KexAlgorithms=sntrup761x25519-sha512@openssh.com,curve25519-sha256";

/// One way of connecting.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Conn {
    Cold,
    Warm,
    WarmByName,
    Explicit,
    SerialCold,
    Ssh,
    SshDefaultKex,
    VerifyConsole,
    VerifyNone,
}

impl Conn {
    fn label(self) -> &'static str {
        match self {
            Conn::Cold => "cold (--no-cache, fresh HOME)",
            Conn::Warm => "warm (route cached)",
            Conn::WarmByName => "warm by Name tag (web-1, route cached)",
            Conn::Explicit => "all lookups skipped (--private-ip/--eice-id/--eice-dns)",
            Conn::SerialCold => "--serial-push, cold",
            Conn::Ssh => "plain ssh straight to sshd, same KEX (floor)",
            Conn::SshDefaultKex => "plain ssh, OpenSSH's default KEX (sntrup761x25519)",
            Conn::VerifyConsole => "first contact, --verify-host-key console (default)",
            Conn::VerifyNone => "first contact, --verify-host-key none",
        }
    }
}

/// One connect: time to the first byte of `echo x`, and the requests the
/// simulator served for it.
async fn connect_once(b: &Bench, case: Conn) -> anyhow::Result<(f64, Vec<LogEntry>)> {
    let target = b.target();
    let dns = b.sim.eice_dns();
    let mut fresh = None;
    let known_hosts = b.file("known_hosts");
    let kh = known_hosts.to_string_lossy().into_owned();
    let mut args: Vec<&str> = vec!["--strict-host-key-checking", "accept-new"];
    let home = match case {
        Conn::Cold | Conn::SerialCold => {
            args.push("--no-cache");
            if case == Conn::SerialCold {
                args.push("--serial-push");
            }
            &*fresh.insert(b.fresh_home()?)
        }
        Conn::Warm | Conn::WarmByName | Conn::Ssh | Conn::SshDefaultKex => &b.warm,
        Conn::Explicit => {
            args.extend([
                "--private-ip",
                PRIVATE_IP,
                "--eice-id",
                EICE_ID,
                "--eice-dns",
                &dns,
            ]);
            &b.warm
        }
        Conn::VerifyConsole | Conn::VerifyNone => {
            args.extend(["--known-hosts", &kh]);
            if case == Conn::VerifyNone {
                args.extend(["--verify-host-key", "none"]);
            }
            &b.warm
        }
    };
    // The simulator's instance is named web-1 (its stopped twin never
    // matches a Name: only running instances do).
    let by_name = target.replacen(crate::harness::INSTANCE, "web-1", 1);
    let target = match case {
        Conn::WarmByName => by_name.as_str(),
        _ => target.as_str(),
    };
    args.extend([target, "--", "echo", "x"]);
    let cmd = match case {
        Conn::Ssh => b.ssh_direct(&[], "echo x"),
        Conn::SshDefaultKex => b.ssh_direct(&["-o", DEFAULT_KEX], "echo x"),
        _ => b.eic(home, &args),
    };
    let before = b.sim.request_log().len();
    let r = run_ok(&cmd, case.label(), Duration::from_secs(60)).await?;
    if r.stdout != b"x\n" {
        bail!(
            "{}: expected \"x\\n\", got {:?}; stderr: {}",
            case.label(),
            String::from_utf8_lossy(&r.stdout),
            r.stderr.trim()
        );
    }
    let log = b
        .sim
        .request_log()
        .get(before..)
        .unwrap_or_default()
        .to_vec();
    let t = r.first_byte.context("no output")?;
    Ok((t.as_secs_f64() * 1e3, log))
}

/// What one pass measured: per case, the times in ms and the distinct
/// critical paths seen.
struct Pass(Vec<(Conn, Vec<f64>, Vec<String>)>);

impl Pass {
    /// Each case `iters` times, interleaved so that drift hits all alike.
    async fn run(b: &Bench, cases: &[Conn]) -> anyhow::Result<Pass> {
        let mut out: Vec<(Conn, Vec<f64>, Vec<String>)> =
            cases.iter().map(|&c| (c, Vec::new(), Vec::new())).collect();
        for _ in 0..b.cfg.iters {
            for (case, times, paths) in out.iter_mut() {
                let (t, log) = connect_once(b, *case).await?;
                times.push(t);
                let p = critical_path(&log);
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
        }
        Ok(Pass(out))
    }

    /// `c`'s times in ms.
    fn times(&self, c: Conn) -> &[f64] {
        self.0
            .iter()
            .find(|(x, _, _)| *x == c)
            .map_or(&[], |(_, t, _)| t.as_slice())
    }

    /// `c`'s critical paths, `|`-separated.
    fn paths(&self, c: Conn) -> String {
        self.0
            .iter()
            .find(|(x, _, _)| *x == c)
            .map(|(_, _, p)| p.join(" | "))
            .unwrap_or_default()
    }

    /// `c`'s median time in ms.
    fn median(&self, c: Conn) -> Option<f64> {
        med(self.times(c))
    }

    /// `c`'s median above the floor's (plain ssh), `+12.3`.
    fn over_floor(&self, c: Conn) -> String {
        match (self.median(c), self.median(Conn::Ssh)) {
            (Some(x), Some(f)) => format!("{:+.1}", x - f),
            _ => "—".into(),
        }
    }
}

/// Row 1: both passes, the connect table, the host-key table and their
/// targets.
pub(crate) async fn row(b: &mut Bench) -> anyhow::Result<String> {
    let lat = b.cfg.latency;
    let l_ms = lat.as_secs_f64() * 1e3;
    let main = [
        Conn::Cold,
        Conn::Warm,
        Conn::WarmByName,
        Conn::Explicit,
        Conn::SerialCold,
        Conn::Ssh,
        Conn::SshDefaultKex,
    ];
    progress("  connect at 0 ms added latency");
    let zero = Pass::run(b, &main).await?;
    progress(&format!("  connect at {l_ms:.0} ms added latency"));
    b.set_latency(lat);
    let mut cases = main.to_vec();
    cases.extend([Conn::VerifyConsole, Conn::VerifyNone]);
    let slow = Pass::run(b, &cases).await?;
    b.set_latency(Duration::ZERO);

    let mut t = Table::new(&[
        "case",
        "0 ms: median (min–max) ms",
        "− floor",
        &format!("{l_ms:.0} ms: median (min–max) ms"),
        "− floor",
        &format!("sequential round trips on the critical path (sim log, {l_ms:.0} ms)"),
    ]);
    for &c in &main {
        t.row(vec![
            c.label().into(),
            spread(zero.times(c), 1),
            zero.over_floor(c),
            spread(slow.times(c), 1),
            slow.over_floor(c),
            slow.paths(c),
        ]);
    }
    let mut out = format!(
        "1. Connect: process start → first byte of `eic-ssh {} -- echo x` ({} iterations each, interleaved)\n   added latency: 0 ms, then {l_ms:.0} ms per API answer and per tunnel handshake\n",
        b.target(),
        b.cfg.iters
    );
    out.push_str(&t.render());
    out.push_str(
        "   DI=DescribeInstances DICE=DescribeInstanceConnectEndpoints WS=websocket upgrade Push=SendSSHPublicKey Console=GetConsoleOutput;\n   [a b] = requests in flight together, → = the next request waited for an answer\n   floor = OpenSSH with -o KexAlgorithms=curve25519-sha256, the key exchange eic-ssh (russh) negotiates with this sshd;\n   the row below it is OpenSSH 9.2's default post-quantum sntrup761x25519, for reference\n",
    );

    // Warm within 15% of the floor plus what cannot be avoided: one
    // handshake round trip (the push runs beside it).
    for (pass, extra, label) in [
        (&zero, 0.0, "0 ms".to_string()),
        (&slow, l_ms, format!("{l_ms:.0} ms")),
    ] {
        let (Some(warm), Some(floor)) = (pass.median(Conn::Warm), pass.median(Conn::Ssh)) else {
            continue;
        };
        let model = floor + extra;
        let measured = format!(
            "{warm:.1} ms vs model {model:.1} ms (floor {floor:.1} + 1 × {extra:.0} ms) = {:.2}×",
            warm / model
        );
        b.check_target(
            &mut out,
            &format!("warm connect ≤ 1.15 × (floor + 1 handshake) at {label}"),
            &format!("warm ≤ 1.15 × model at {label}"),
            measured,
            warm <= model * 1.15,
        );
    }

    // A cold connect: the lookups, the key push and the console in one
    // round trip, then the websocket. Counted from the simulator's log.
    let cold = slow.paths(Conn::Cold);
    let two = !cold.is_empty() && cold.split(" | ").all(|p| p.starts_with("2 (1 API + 1 WS)"));
    b.check_target(
        &mut out,
        &format!("cold connect = 2 sequential round trips at {l_ms:.0} ms (sim log)"),
        &format!("cold = 2 sequential round trips at {l_ms:.0} ms"),
        cold,
        two,
    );

    // By Name, warm: the lookup runs beside the push and the websocket to
    // the instance the name found last time.
    let named = slow.paths(Conn::WarmByName);
    let one = !named.is_empty()
        && named
            .split(" | ")
            .all(|p| p.starts_with("1 (0 API + 1 WS)"));
    b.check_target(
        &mut out,
        &format!("warm connect by Name = 1 sequential round trip at {l_ms:.0} ms (sim log)"),
        &format!("warm by Name = 1 sequential round trip at {l_ms:.0} ms"),
        named,
        one,
    );

    let mut t = Table::new(&[
        &format!("host-key verification, first contact, warm route, {l_ms:.0} ms"),
        "median (min–max) ms",
        "critical path (sim log)",
    ]);
    for c in [Conn::VerifyConsole, Conn::VerifyNone] {
        t.row(vec![
            c.label().into(),
            spread(slow.times(c), 1),
            slow.paths(c),
        ]);
    }
    out.push('\n');
    out.push_str(&t.render());
    if let (Some(console), Some(none)) = (
        slow.median(Conn::VerifyConsole),
        slow.median(Conn::VerifyNone),
    ) {
        let diff = console - none;
        let allowed = (none * 0.05).max(3.0);
        b.check_target(
            &mut out,
            "console host-key check costs nothing measurable",
            "no measurable difference (|Δ| ≤ max(3 ms, 5%))",
            format!("Δmedian {diff:+.1} ms (allowed ±{allowed:.1} ms)"),
            diff.abs() <= allowed,
        );
    }
    out.push('\n');
    Ok(out)
}

/// The short name of an API operation in a critical path.
fn short(op: &str) -> &str {
    match op {
        "DescribeInstances" => "DI",
        "DescribeInstanceConnectEndpoints" => "DICE",
        "SendSSHPublicKey" => "Push",
        "GetConsoleOutput" => "Console",
        "OpenTunnel" => "WS",
        other => other,
    }
}

/// The sequential round trips on the critical path, counted from the log:
/// a request's stage is one more than the latest stage among the requests
/// answered before it started, so requests whose [started, finished]
/// intervals overlap share a stage (they ran concurrently) and the number of
/// stages is the longest chain of requests that each waited for an answer.
/// A stage is a handshake round trip if it holds the websocket upgrade, an
/// API round trip otherwise.
fn critical_path(log: &[LogEntry]) -> String {
    if log.is_empty() {
        return "0 (no AWS requests)".into();
    }
    let mut e: Vec<&LogEntry> = log.iter().collect();
    e.sort_by_key(|x| x.started);
    let mut stage: Vec<usize> = Vec::with_capacity(e.len());
    for x in &e {
        let before = e
            .iter()
            .zip(&stage)
            .filter(|(y, _)| y.finished <= x.started)
            .map(|(_, s)| *s)
            .max()
            .unwrap_or(0);
        stage.push(before + 1);
    }
    let stages = stage.iter().copied().max().unwrap_or(0);
    let mut groups = Vec::new();
    let mut ws = 0;
    for s in 1..=stages {
        let mut ops: Vec<&str> = e
            .iter()
            .zip(&stage)
            .filter(|(_, t)| **t == s)
            .map(|(x, _)| short(&x.op))
            .collect();
        ops.sort_unstable();
        if ops.contains(&"WS") {
            ws += 1;
        }
        groups.push(format!("[{}]", ops.join(" ")));
    }
    format!(
        "{stages} ({} API + {ws} WS): {}",
        stages - ws,
        groups.join(" → ")
    )
}
