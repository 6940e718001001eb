//! Row 10: the build. `cargo install --locked --path SRC` from nothing: a
//! fresh target directory and install root (the registry's download cache
//! is kept: downloading is not building). Wall time, CPU time, the peak
//! memory of the whole process tree (cargo, every rustc, cc and linker at
//! once, sampled from `/proc`), the binary's size, and the load average
//! beside it, since a build on a shared machine is only as fast as what
//! else runs. Targets: ≤ 15 minutes and ≤ 8 GB.
//!
//! Opt-in (`--rows 10`): it takes as long as a release build. Profile
//! settings can be compared without editing `Cargo.toml`: cargo reads
//! `CARGO_PROFILE_RELEASE_LTO`, `CARGO_PROFILE_RELEASE_CODEGEN_UNITS` and
//! the rest from the environment, and the row prints the ones in effect.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::process::{TIME, TIME_FORMAT};
use crate::report::{Table, Target, verdict};

/// The targets: wall time and peak memory of a build from nothing.
const MAX_MINUTES: f64 = 15.0;
const MAX_GB: f64 = 8.0;
/// How often the process tree's memory is sampled.
const SAMPLE: Duration = Duration::from_millis(250);

/// What one build cost.
struct Measured {
    wall: Duration,
    cpu: Option<f64>,
    /// The most the process tree held at once (PSS summed), bytes.
    peak_tree: u64,
    /// The largest single process (its RSS), bytes, and what it was.
    peak_one: (u64, String),
    load_before: String,
    load_mean: f64,
    binary: Option<u64>,
}

/// Row 10: builds eic-ssh from `src` as a user's `cargo install` would, and
/// prints the cost with its targets. `keep` installs into that directory
/// (to measure the binary with `--eic-ssh`) instead of a temporary one.
pub(crate) async fn row(
    src: &Path,
    keep: Option<&Path>,
    cores: usize,
    targets: &mut Vec<Target>,
) -> anyhow::Result<String> {
    let scratch = tempfile::Builder::new()
        .prefix("eic-ssh-build-")
        .tempdir()
        .context("creating a scratch directory")?;
    let root = keep.map_or_else(|| scratch.path().join("root"), Path::to_path_buf);
    let target_dir = scratch.path().join("target");
    let time_file = scratch.path().join("time");
    let src = src.to_path_buf();
    let profile = profile_in_effect(&src);
    crate::harness::progress(&format!(
        "  cargo install --locked --path {} ({profile}): this takes a while",
        src.display()
    ));
    let m =
        tokio::task::spawn_blocking(move || build(&src, &root, &target_dir, &time_file)).await??;

    let minutes = m.wall.as_secs_f64() / 60.0;
    let gb = m.peak_tree as f64 / 1e9;
    let mut t = Table::new(&["cargo install --locked --path . (from nothing)", "measured"]);
    t.row(vec!["release profile".into(), profile]);
    t.row(vec![
        "wall time".into(),
        format!("{minutes:.1} min ({:.0} s)", m.wall.as_secs_f64()),
    ]);
    t.row(vec![
        "CPU time (user + system, all processes)".into(),
        m.cpu.map_or("— (needs GNU time)".into(), |c| {
            format!("{:.1} min", c / 60.0)
        }),
    ]);
    t.row(vec![
        "peak memory, whole process tree (PSS)".into(),
        format!("{gb:.2} GB"),
    ]);
    t.row(vec![
        "largest single process (RSS)".into(),
        format!("{:.2} GB ({})", m.peak_one.0 as f64 / 1e9, m.peak_one.1),
    ]);
    t.row(vec![
        "binary size".into(),
        m.binary
            .map_or("—".into(), |b| format!("{:.1} MB", b as f64 / 1e6)),
    ]);
    t.row(vec![
        "load average: before (1/5/15 min); mean during".into(),
        format!("{}; {:.1}", m.load_before, m.load_mean),
    ]);
    let mut out = format!("10. Build from nothing, {cores} cores\n{}", t.render());
    let mut check = |what: &str, measured: String, pass: bool| {
        let _ = writeln!(out, "   target {what}: {measured} → {}", verdict(pass));
        targets.push(Target {
            what: what.into(),
            measured,
            pass,
        });
    };
    check(
        &format!("cargo install ≤ {MAX_MINUTES:.0} min on {cores} cores"),
        format!("{minutes:.1} min (load {:.1})", m.load_mean),
        minutes <= MAX_MINUTES,
    );
    check(
        &format!("cargo install ≤ {MAX_GB:.0} GB peak memory"),
        format!("{gb:.2} GB"),
        gb <= MAX_GB,
    );
    out.push('\n');
    Ok(out)
}

/// Runs the build, sampling the memory of its process tree until it ends.
fn build(src: &Path, root: &Path, target_dir: &Path, time_file: &Path) -> anyhow::Result<Measured> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let (program, mut args): (std::ffi::OsString, Vec<std::ffi::OsString>) =
        match Path::new(TIME).is_file() {
            true => (
                TIME.into(),
                vec![
                    "-f".into(),
                    TIME_FORMAT.into(),
                    "-o".into(),
                    time_file.into(),
                    cargo,
                ],
            ),
            false => (cargo, Vec::new()),
        };
    args.extend(
        [
            "install", "--locked", "--quiet", "--force", "--bin", "eic-ssh",
        ]
        .map(Into::into),
    );
    args.extend(["--path".into(), src.into()]);
    args.extend(["--root".into(), root.into()]);
    args.extend(["--target-dir".into(), target_dir.into()]);
    let load_before = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let start = Instant::now();
    let mut child = std::process::Command::new(&program)
        .args(&args)
        // An incremental cache is no part of a user's install.
        .env("CARGO_INCREMENTAL", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("running {}", program.to_string_lossy()))?;
    let mut peak_tree = 0u64;
    let mut peak_one = (0u64, String::new());
    let mut loads = Vec::new();
    let mut last_load = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        let mut tree = 0u64;
        for pid in descendants(child.id()) {
            let (pss, rss) = memory_of(pid);
            tree += pss.unwrap_or(rss);
            if rss > peak_one.0 {
                let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .map(|c| c.trim().to_owned())
                    .unwrap_or_default();
                peak_one = (rss, crate_being_built(pid).unwrap_or(name));
            }
        }
        peak_tree = peak_tree.max(tree);
        if last_load.elapsed() >= Duration::from_secs(5) {
            last_load = Instant::now();
            if let Some(l) = load_1min() {
                loads.push(l);
            }
        }
        std::thread::sleep(SAMPLE);
    };
    let wall = start.elapsed();
    if !status.success() {
        bail!("cargo install failed ({status})");
    }
    let cpu = std::fs::read_to_string(time_file).ok().and_then(|t| {
        let line = t.lines().rev().find(|l| !l.trim().is_empty())?.to_owned();
        let v: Vec<f64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        Some(v.get(1)? + v.get(2)?)
    });
    let binary = std::fs::metadata(root.join("bin").join("eic-ssh"))
        .ok()
        .map(|m| m.len());
    let load_mean = match loads.len() {
        0 => load_1min().unwrap_or(0.0),
        n => loads.iter().sum::<f64>() / n as f64,
    };
    Ok(Measured {
        wall,
        cpu,
        peak_tree,
        peak_one,
        load_before,
        load_mean,
        binary,
    })
}

/// `pid` and every process below it.
fn descendants(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(parent) = parent_of(p) {
                children.entry(parent).or_default().push(p);
            }
        }
    }
    let mut seen = HashSet::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        if seen.insert(p) {
            todo.extend(children.get(&p).into_iter().flatten());
        }
    }
    seen.into_iter().collect()
}

/// The parent of `pid`, from `/proc/PID/stat` (after the command name,
/// which may hold spaces and parentheses).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// A process's proportional set size (shared pages split between their
/// users, so that a sum over processes counts each page once) and its RSS,
/// in bytes.
fn memory_of(pid: u32) -> (Option<u64>, u64) {
    let field = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    let pss = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| field(&t, "Pss:"));
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| field(&t, "VmRSS:"))
        .unwrap_or(0);
    (pss, rss)
}

/// `rustc`'s `--crate-name`, to name the process that needed the most.
fn crate_being_built(pid: u32) -> Option<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let at = args.iter().position(|a| *a == b"--crate-name")?;
    let name = String::from_utf8_lossy(args.get(at + 1)?).into_owned();
    Some(format!("rustc {name}"))
}

fn load_1min() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The release profile's settings as `Cargo.toml` has them, with any
/// `CARGO_PROFILE_RELEASE_*` override from the environment.
fn profile_in_effect(src: &Path) -> String {
    let manifest = std::fs::read_to_string(src.join("Cargo.toml")).unwrap_or_default();
    let mut settings: Vec<(String, String)> = Vec::new();
    let mut inside = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[profile.release]";
            continue;
        }
        if let (true, Some((k, v))) = (inside, line.split_once('=')) {
            settings.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    for (k, v) in std::env::vars() {
        if let Some(key) = k.strip_prefix("CARGO_PROFILE_RELEASE_") {
            let key = key.to_ascii_lowercase().replace('_', "-");
            let shown = format!("{v} (from {k})");
            match settings.iter_mut().find(|(name, _)| *name == key) {
                Some(s) => s.1 = shown,
                None => settings.push((key, shown)),
            }
        }
    }
    if settings.is_empty() {
        return "cargo's default release profile".into();
    }
    settings
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The workspace this bench was built from: the default source to build.
pub(crate) fn default_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
