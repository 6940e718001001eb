//! Row 8: fleet. `eic-ssh exec tag:Role=fleet -- true` over 200 instances
//! (built-in SSH servers) behind 3 endpoints, at `--latency-ms` per API
//! answer and tunnel handshake: the wall time, the API calls by action and
//! the peak of open tunnels per endpoint, both from the simulator's logs.
//!
//! Target: wall ≤ 1.3 × ⌈N / 60⌉ × one warm connect at the same latency —
//! three endpoints of 20 tunnels each are 60 at once, so N instances take
//! ⌈N / 60⌉ waves of what one connection takes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, bail};
use eic_sim::builtin_sshd::{BuiltinSshd, start_builtin_sshd};
use eic_sim::{Endpoint, Instance, Simulator, Subnet, World};

use crate::harness::{Bench, progress};
use crate::process::run_ok;
use crate::report::{Table, med, spread};

/// Endpoints in the fleet's VPC, one per subnet.
const ENDPOINTS: usize = 3;
/// The service's quota of open tunnels per endpoint.
const QUOTA: usize = 20;

/// The demo world plus `n` running instances tagged `Role=fleet`, spread
/// over three subnets of `vpc-1`, each subnet with its own endpoint.
fn fleet_world(n: usize) -> World {
    let mut world = World::demo();
    let template = world.instances[0].clone();
    let endpoint = world.endpoints[0].clone();
    for s in 0..ENDPOINTS {
        let subnet = format!("subnet-f{s}");
        world.subnets.push(Subnet {
            id: subnet.clone(),
            vpc_id: "vpc-1".into(),
            cidr: format!("10.0.{}.0/24", 10 + s),
            ipv6_cidr: None,
            availability_zone: "us-east-1a".into(),
        });
        world.endpoints.push(Endpoint {
            id: format!("eice-0f{s:015x}"),
            subnet_id: subnet,
            private_ip: Some(format!("10.0.{}.5", 10 + s)),
            private_ipv6: None,
            ..endpoint.clone()
        });
    }
    for i in 0..n {
        let s = i % ENDPOINTS;
        world.instances.push(Instance {
            id: format!("i-0f{i:015x}"),
            private_ip: Some(format!("10.0.{}.{}", 10 + s, 10 + i / ENDPOINTS)),
            subnet_id: format!("subnet-f{s}"),
            tags: vec![
                ("Name".into(), format!("node-{i}")),
                ("Role".into(), "fleet".into()),
            ],
            ssh: None,
            console_output: None,
            ..template.clone()
        });
    }
    world
}

/// One warm connect's time to the first byte, at the bench's latency, from
/// the main simulator: the unit the target is counted in.
async fn warm_connect(b: &Bench) -> anyhow::Result<f64> {
    let mut times = Vec::new();
    for _ in 0..b.cfg.iters {
        let cmd = b.eic_warm(&[b.target().as_str(), "--", "echo", "x"]);
        let r = run_ok(&cmd, "warm connect", Duration::from_secs(60)).await?;
        times.push(r.first_byte.context("no output")?.as_secs_f64() * 1e3);
    }
    med(&times).context("no warm connect")
}

/// Row 8.
pub(crate) async fn row(b: &mut Bench) -> anyhow::Result<String> {
    let n = if b.cfg.quick { 30 } else { 200 };
    let iters = if b.cfg.quick { 1 } else { 3 };
    let lat = b.cfg.latency;
    let l_ms = lat.as_secs_f64() * 1e3;
    progress(&format!("  {n} instances behind {ENDPOINTS} endpoints"));
    let sim = Simulator::start(fleet_world(n))
        .await
        .context("starting the fleet's simulator")?;
    let ids: Vec<String> = sim
        .world()
        .instances
        .iter()
        .filter(|i| i.tag("Role") == Some("fleet"))
        .map(|i| i.id.clone())
        .collect();
    let mut servers: Vec<BuiltinSshd> = Vec::with_capacity(n);
    for id in &ids {
        servers.push(start_builtin_sshd(&sim, id).await?);
    }
    // Each console shows its host key, so every first contact verifies.
    let consoles: BTreeMap<String, String> = ids
        .iter()
        .zip(&servers)
        .map(|(id, s)| {
            let key: Vec<&str> = s.host_key_pub.split_whitespace().take(2).collect();
            let text = format!(
                "-----BEGIN SSH HOST KEY KEYS-----\r\n{} root@host\r\n-----END SSH HOST KEY KEYS-----\r\n",
                key.join(" ")
            );
            (id.clone(), text)
        })
        .collect();
    sim.set_world(|w| {
        for i in &mut w.instances {
            if let Some(c) = consoles.get(&i.id) {
                i.console_output = Some(c.clone());
            }
        }
    });
    sim.set_api_latency(lat);
    sim.set_handshake_latency(lat);
    b.set_latency(lat);
    progress(&format!("  one warm connect at {l_ms:.0} ms"));
    let warm = warm_connect(b).await;
    b.set_latency(Duration::ZERO);
    let warm = warm?;

    let target = format!("{}@tag:Role=fleet", b.user);
    let mut walls = Vec::new();
    let mut calls: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut peaks: BTreeMap<String, usize> = BTreeMap::new();
    let mut refused = Vec::new();
    for k in 0..iters {
        progress(&format!("  exec -- true over {n}, run {}/{iters}", k + 1));
        // A fresh HOME: every instance is a first contact.
        let home = sim.client_home_in(b.work.path())?;
        let before = sim.request_log().len();
        let events_before = sim.tunnel_log().len();
        let cmd = b.eic(&home, &["exec", target.as_str(), "--", "true"]);
        let r = run_ok(&cmd, "exec over the fleet", Duration::from_secs(300)).await?;
        if !r
            .stderr
            .contains(&format!(": {n} succeeded, 0 failed, 0 unreachable"))
        {
            bail!("not every instance succeeded: {}", r.stderr.trim());
        }
        walls.push(r.wall.as_secs_f64() * 1e3);
        let log = sim.request_log();
        let log = log.get(before..).unwrap_or_default();
        let mut by_op: BTreeMap<String, usize> = BTreeMap::new();
        for e in log {
            *by_op.entry(e.op.clone()).or_default() += 1;
        }
        refused.push(
            log.iter()
                .filter(|e| e.op == "OpenTunnel" && e.status == 429)
                .count(),
        );
        for (op, c) in by_op {
            calls.entry(op).or_default().push(c);
        }
        let mut open: BTreeMap<String, usize> = BTreeMap::new();
        for e in sim.tunnel_log().get(events_before..).unwrap_or_default() {
            let p = open.entry(e.endpoint_id.clone()).or_default();
            *p = (*p).max(e.open_after);
        }
        for (ep, p) in open {
            let q = peaks.entry(ep).or_default();
            *q = (*q).max(p);
        }
    }
    drop(servers);

    let mut out = format!(
        "8. Fleet: `eic-ssh exec {target} -- true` over {n} instances (built-in SSH servers) behind {ENDPOINTS} endpoints, \
         {l_ms:.0} ms per API answer and tunnel handshake, {iters} run(s), fresh HOME each (first contacts, console-verified)\n"
    );
    let mut t = Table::new(&["measure", "value"]);
    t.row(vec![
        "wall time, median (min–max) ms".into(),
        spread(&walls, 0),
    ]);
    for (op, c) in &calls {
        let per_run: Vec<String> = c.iter().map(usize::to_string).collect();
        t.row(vec![
            format!("API calls: {op} (per run)"),
            per_run.join(", "),
        ]);
    }
    let refused_s: Vec<String> = refused.iter().map(usize::to_string).collect();
    t.row(vec![
        "of which OpenTunnel refused 429 (per run)".into(),
        refused_s.join(", "),
    ]);
    for (ep, p) in &peaks {
        t.row(vec![format!("peak open tunnels at {ep}"), p.to_string()]);
    }
    t.row(vec![
        format!("one warm connect at {l_ms:.0} ms, median ms"),
        format!("{warm:.1}"),
    ]);
    out.push_str(&t.render());

    let wall = med(&walls).context("no run")?;
    let waves = n.div_ceil(ENDPOINTS * QUOTA) as f64;
    let model = waves * warm;
    let mut measured = String::new();
    let _ = write!(
        measured,
        "{wall:.0} ms vs {waves:.0} × {warm:.1} ms = {model:.0} ms: {:.2}×",
        wall / model
    );
    b.check_target(
        &mut out,
        &format!("fleet exec ≤ 1.3 × ⌈{n}/60⌉ × warm connect at {l_ms:.0} ms"),
        &format!("wall ≤ 1.3 × ⌈{n}/60⌉ × one warm connect"),
        measured,
        wall <= 1.3 * model,
    );
    let max_peak = peaks.values().copied().max().unwrap_or(0);
    b.check_target(
        &mut out,
        "fleet: ≤ 20 open tunnels per endpoint (sim log)",
        "peak open tunnels per endpoint ≤ 20",
        format!("{max_peak}"),
        max_peak <= QUOTA && peaks.len() == ENDPOINTS,
    );
    out.push('\n');
    Ok(out)
}
