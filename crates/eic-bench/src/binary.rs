//! Row 5: binary. The size of the eic-ssh binary (and of this bench) and
//! the wall time of `--version`, spawn to exit.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::harness::{Bench, CHILD};
use crate::report::{Table, med, spread, stats};

/// `runs` wall times of `program --version` in ms, with `env` as its whole
/// environment.
fn time_version(
    program: &Path,
    env: &[(OsString, OsString)],
    runs: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let st = std::process::Command::new(program)
            .arg("--version")
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("running {} --version", program.display()))?;
        v.push(start.elapsed().as_secs_f64() * 1e3);
        if !st.success() {
            bail!("{} --version: {st}", program.display());
        }
    }
    Ok(v)
}

/// Times `program --version` off the runtime's threads and adds its row
/// (`label`, size, median, p99) to `t`; returns the times.
async fn version_row(
    t: &mut Table,
    label: String,
    program: PathBuf,
    env: Vec<(OsString, OsString)>,
    runs: usize,
) -> anyhow::Result<Vec<f64>> {
    let size = std::fs::metadata(&program)
        .map(|m| m.len() as f64 / 1e6)
        .ok();
    let v = tokio::task::spawn_blocking(move || time_version(&program, &env, runs)).await??;
    t.row(vec![
        label,
        size.map_or("—".into(), |s| format!("{s:.2}")),
        spread(&v, 2),
        stats(&v).map_or("—".into(), |s| format!("{:.2}", s.p99)),
    ]);
    Ok(v)
}

/// Row 5: the real eic-ssh binary when it is built beside this bench, then
/// the bench itself; the `--version` target.
pub(crate) async fn row(b: &mut Bench) -> anyhow::Result<String> {
    let runs = b.cfg.version_runs;
    let bench = std::env::current_exe().context("locating this binary")?;
    // target/<profile>/eic-bench → target/<profile>/eic-ssh
    let real = bench
        .parent()
        .map(|d| d.join("eic-ssh"))
        .filter(|p| p.is_file());
    let mut t = Table::new(&[
        "binary",
        "size MB",
        "`--version` median (min–max) ms",
        "p99 ms",
    ]);
    let env = b.env(&b.warm);
    let mut version_ms = None;
    if let Some(real) = &real {
        let env = env.iter().filter(|(k, _)| k != CHILD).cloned().collect();
        let v = version_row(&mut t, real.display().to_string(), real.clone(), env, runs).await?;
        version_ms = med(&v);
    }
    let label = format!("{} (this bench, with the simulator)", bench.display());
    let v = version_row(&mut t, label, bench, env, runs).await?;
    let mut out =
        format!("5. Binary: size and `--version` wall time ({runs} runs, spawn to exit)\n");
    out.push_str(&t.render());
    if real.is_none() {
        out.push_str("   note: the eic-ssh binary is not built beside this bench; run `cargo build --release --bin eic-ssh` first. Timing the bench binary instead.\n");
    }
    let (which, ms) = match version_ms {
        Some(ms) => ("eic-ssh", Some(ms)),
        None => ("bench binary", med(&v)),
    };
    if let Some(ms) = ms {
        b.check_target(
            &mut out,
            "--version < 5 ms",
            "--version < 5 ms",
            format!("{ms:.2} ms ({which})"),
            ms < 5.0,
        );
    }
    out.push('\n');
    Ok(out)
}
