//! `cargo run --release -p eic-bench [-- OPTIONS]`: measures eic-ssh's
//! speed and memory side by side with OpenSSH, in one run, and prints a
//! table with the targets marked PASS or FAIL.
//!
//! Everything runs locally: the AWS simulator (with injected latency per API
//! answer, per tunnel handshake and per relayed message) in this process, a
//! real OpenSSH `sshd` as the instance, and the real eic-ssh command line in
//! child processes. The child is this very binary re-executed with an
//! environment marker, exactly as `examples/demo.rs` does, so what runs is
//! `eic_ssh::main_with_args` and nothing else, with a hermetic environment
//! (its own HOME and TMPDIR, empty AWS files, the simulator's settings).
//!
//! `--quick` shrinks every size so that the whole suite finishes in well
//! under a minute: it checks that the bench works, its numbers mean little.
//! `--help` lists the knobs; each also reads an `EIC_SSH_BENCH_*` variable.
//!
//! One module per row ([`connect`], [`bulk`], [`keystroke`], [`memory`],
//! [`binary`], [`copy`], [`forward`], [`fleet`], [`soak`], and the opt-in
//! [`build`]), on top of the shared [`harness`] (the simulator, the sshd
//! and the command lines), [`process`] (running and timing children),
//! [`relay`] (the ProxyCommand floor) and [`report`] (statistics, tables and
//! targets).

mod binary;
mod build;
mod bulk;
mod connect;
mod copy;
mod fleet;
mod forward;
mod harness;
mod keystroke;
mod memory;
mod process;
mod relay;
mod report;
mod soak;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::harness::{CHILD, MB, emit, progress, setup};
use crate::process::TIME;

/// Benchmarks eic-ssh against OpenSSH through the local AWS simulator and a
/// real sshd. Run it in release mode: `cargo run --release -p eic-bench`.
#[derive(Debug, Parser)]
#[command(name = "eic-bench")]
struct Opts {
    /// Tiny sizes and few iterations: checks that the bench works (< 1 min).
    #[arg(long, env = "EIC_SSH_BENCH_QUICK")]
    quick: bool,
    /// Which rows to run (1 connect, 2 bulk, 3 keystrokes, 4 memory, 5 binary,
    /// 6 cp against scp and sftp, 7 -L against ssh -L, 8 fleet, 9 soak;
    /// default: 1-9) and the opt-in 10: `cargo install` from nothing,
    /// timed, as long as a release build takes.
    #[arg(long, value_delimiter = ',', env = "EIC_SSH_BENCH_ROWS")]
    rows: Vec<u8>,
    /// Row 10: the source to build [default: the workspace this bench was
    /// built from].
    #[arg(long, value_name = "DIR", env = "EIC_SSH_BENCH_BUILD_SRC")]
    build_src: Option<PathBuf>,
    /// Row 10: install into DIR (kept, so that `--eic-ssh DIR/bin/eic-ssh`
    /// can measure that binary) instead of a temporary directory.
    #[arg(long, value_name = "DIR", env = "EIC_SSH_BENCH_BUILD_ROOT")]
    build_root: Option<PathBuf>,
    /// Iterations of each connect case [default: 10; quick: 2].
    #[arg(long, env = "EIC_SSH_BENCH_ITERS")]
    iters: Option<usize>,
    /// Added latency in ms per API answer and per tunnel handshake, for
    /// the second connect pass and the host-key row.
    #[arg(long, default_value_t = 50, env = "EIC_SSH_BENCH_LATENCY_MS")]
    latency_ms: u64,
    /// MB moved in each bulk, copy and -L transfer [default: 500; quick: 4].
    #[arg(long, env = "EIC_SSH_BENCH_BULK_MB")]
    bulk_mb: Option<u64>,
    /// Iterations of each bulk case [default: 3; quick: 1].
    #[arg(long, env = "EIC_SSH_BENCH_BULK_ITERS")]
    bulk_iters: Option<usize>,
    /// Added latency in ms per relayed message, for the second bulk pass.
    #[arg(long, default_value_t = 10, env = "EIC_SSH_BENCH_FRAME_LATENCY_MS")]
    frame_latency_ms: u64,
    /// Timed keystrokes per case [default: 500; quick: 20].
    #[arg(long, env = "EIC_SSH_BENCH_KEYSTROKES")]
    keystrokes: Option<usize>,
    /// Concurrent transfers through one `eic-ssh tunnel` listener.
    #[arg(long, default_value_t = 10, env = "EIC_SSH_BENCH_TUNNEL_CONNS")]
    tunnel_conns: usize,
    /// MB each listener transfer moves [default: 50; quick: 1].
    #[arg(long, env = "EIC_SSH_BENCH_TUNNEL_MB")]
    tunnel_mb: Option<u64>,
    /// Runs of `eic-ssh --version` [default: 50; quick: 5].
    #[arg(long, env = "EIC_SSH_BENCH_VERSION_RUNS")]
    version_runs: Option<usize>,
    /// Sequential `eic-ssh … -- true` runs in the soak [default: 500; quick: 30].
    #[arg(long, env = "EIC_SSH_BENCH_SOAK_EXECS")]
    soak_execs: Option<usize>,
    /// Connections through one listener in the soak, 20 at a time
    /// [default: 2000; quick: 200].
    #[arg(long, env = "EIC_SSH_BENCH_SOAK_CONNS")]
    soak_conns: Option<usize>,
    /// Run this eic-ssh binary (e.g. `target/release/eic-ssh`) as the
    /// command under test, instead of this bench re-executed as eic-ssh.
    #[arg(long, value_name = "PATH", env = "EIC_SSH_BENCH_EIC_SSH")]
    eic_ssh: Option<PathBuf>,
    /// Row 2: also measure this eic-ssh binary's embedded client and proxy,
    /// interleaved with the rest (e.g. a build of main, for a before/after
    /// in one run). Repeatable.
    #[arg(long, value_name = "PATH")]
    versus: Vec<PathBuf>,
}

/// The options with every default filled in.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) quick: bool,
    pub(crate) rows: Vec<u8>,
    pub(crate) iters: usize,
    pub(crate) latency: Duration,
    pub(crate) bulk_bytes: u64,
    pub(crate) bulk_iters: usize,
    pub(crate) frame_latency: Duration,
    pub(crate) keystrokes: usize,
    pub(crate) tunnel_conns: usize,
    pub(crate) tunnel_bytes: u64,
    pub(crate) version_runs: usize,
    pub(crate) soak_execs: usize,
    pub(crate) soak_conns: usize,
    pub(crate) eic_ssh: Option<PathBuf>,
    pub(crate) versus: Vec<PathBuf>,
    pub(crate) build_src: PathBuf,
    pub(crate) build_root: Option<PathBuf>,
}

impl Config {
    fn new(o: Opts) -> Config {
        let pick = |v: Option<usize>, full: usize, quick: usize| {
            v.unwrap_or(if o.quick { quick } else { full }).max(1)
        };
        let mb = |v: Option<u64>, full: u64, quick: u64| {
            v.unwrap_or(if o.quick { quick } else { full }).max(1) * MB
        };
        Config {
            quick: o.quick,
            rows: if o.rows.is_empty() {
                vec![1, 2, 3, 4, 5, 6, 7, 8, 9]
            } else {
                o.rows.clone()
            },
            iters: pick(o.iters, 10, 2),
            latency: Duration::from_millis(o.latency_ms),
            bulk_bytes: mb(o.bulk_mb, 500, 4),
            bulk_iters: pick(o.bulk_iters, 3, 1),
            frame_latency: Duration::from_millis(o.frame_latency_ms),
            keystrokes: pick(o.keystrokes, 500, 20),
            tunnel_conns: o.tunnel_conns.clamp(1, 19),
            tunnel_bytes: mb(o.tunnel_mb, 50, 1),
            version_runs: pick(o.version_runs, 50, 5),
            soak_execs: pick(o.soak_execs, 500, 30),
            soak_conns: pick(o.soak_conns, 2000, 200),
            eic_ssh: o.eic_ssh,
            versus: o.versus,
            build_src: o.build_src.unwrap_or_else(build::default_src),
            build_root: o.build_root,
        }
    }

    /// Whether row `n` is to run.
    pub(crate) fn row(&self, n: u8) -> bool {
        self.rows.contains(&n)
    }
}

fn main() -> anyhow::Result<ExitCode> {
    // `bench __relay HOST:PORT`: the floor for a ProxyCommand (see `relay`).
    let args: Vec<OsString> = std::env::args_os().collect();
    if let [_, mode, addr] = args.as_slice()
        && mode == relay::RELAY
    {
        relay::relay(&addr.to_string_lossy())?;
        return Ok(ExitCode::SUCCESS);
    }
    // The child is the real eic-ssh command line, unchanged.
    if std::env::var_os(CHILD).is_some() {
        return Ok(eic_ssh::main_with_args(std::env::args_os()));
    }
    let config = Config::new(Opts::parse());
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench(config))
}

/// Sets everything up, runs the chosen rows in order (a failed row prints
/// its error and the next one runs), then prints the targets. The build
/// (row 10) comes first, before anything else is started: it needs no
/// simulator, and nothing of the bench's should share the cores with it.
async fn bench(cfg: Config) -> anyhow::Result<ExitCode> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut built = Vec::new();
    if cfg.row(10) {
        progress("row 10: build");
        let section =
            build::row(&cfg.build_src, cfg.build_root.as_deref(), cores, &mut built).await;
        match section {
            Ok(text) => emit(&text),
            Err(e) => emit(&format!("10. build: FAILED: {e:#}\n\n")),
        }
        if cfg.rows.iter().all(|&r| r == 10) {
            emit(&report::summary(&built, cores));
            return Ok(ExitCode::SUCCESS);
        }
    }
    let mut b = setup(cfg).await?;
    b.targets.append(&mut built);
    let profile = if cfg!(debug_assertions) {
        "DEBUG build: the numbers below are not meaningful, use --release"
    } else {
        "release build"
    };
    emit(&format!(
        "eic-ssh bench — {cores} cores (available_parallelism), {profile}{}\n\
         simulator in-process; instance = real OpenSSH sshd on {}; ssh client: {}\n\n",
        if b.cfg.quick {
            "; --quick: tiny sizes, a smoke test only"
        } else {
            ""
        },
        b.sshd.addr,
        ssh_version(),
    ));
    if !b.has_time {
        emit(&format!(
            "note: {TIME} (GNU time) is missing, so CPU and peak-RSS columns are skipped: apt-get install time\n\n"
        ));
    }
    let rows: [(u8, &str); 9] = [
        (1, "connect"),
        (2, "bulk"),
        (3, "keystrokes"),
        (4, "memory"),
        (5, "binary"),
        (6, "copy"),
        (7, "forward"),
        (8, "fleet"),
        (9, "soak"),
    ];
    for (n, name) in rows {
        if !b.cfg.row(n) {
            continue;
        }
        progress(&format!("row {n}: {name}"));
        let section = match n {
            1 => connect::row(&mut b).await,
            2 => bulk::row(&mut b).await,
            3 => keystroke::row(&mut b).await,
            4 => memory::row(&mut b).await,
            5 => binary::row(&mut b).await,
            6 => copy::row(&mut b).await,
            7 => forward::row(&mut b).await,
            8 => fleet::row(&mut b).await,
            _ => soak::row(&mut b).await,
        };
        match section {
            Ok(text) => emit(&text),
            Err(e) => emit(&format!("{n}. {name}: FAILED: {e:#}\n\n")),
        }
        b.set_latency(Duration::ZERO);
        b.sim.set_frame_latency(Duration::ZERO);
    }
    emit(&report::summary(&b.targets, cores));
    Ok(ExitCode::SUCCESS)
}

/// What `ssh -V` says.
fn ssh_version() -> String {
    std::process::Command::new("ssh")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}
