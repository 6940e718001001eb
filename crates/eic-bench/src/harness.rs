//! The state every row shares: the simulator, the real sshd standing in for
//! the instance, an authorized OpenSSH user key, a warm HOME, and the
//! command lines built from them; plus the setup that makes it and the
//! bookkeeping of targets.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use eic_sim::sshd::Sshd;
use eic_sim::{ClientHome, Simulator, World};

use crate::Config;
use crate::process::{Cmd, TIME, TIME_FORMAT, run_ok};
use crate::relay::RELAY;
use crate::report::{Target, verdict};

/// Set in a child's environment: run as the eic-ssh command line.
pub(crate) const CHILD: &str = "EIC_SSH_BENCH_CHILD";
pub(crate) const INSTANCE: &str = "i-0123456789abcdef0";
pub(crate) const EICE_ID: &str = "eice-0123456789abcdef0";
pub(crate) const PRIVATE_IP: &str = "10.0.1.10";
/// Bytes per MB in every size and rate the bench prints.
pub(crate) const MB: u64 = 1_000_000;
/// The key exchange russh negotiates with OpenSSH 9.2's sshd (its first
/// choice, mlkem768x25519, is newer than 9.2).
const SAME_KEX: &str = "KexAlgorithms=curve25519-sha256";

/// Everything a row needs, and the targets met so far.
pub(crate) struct Bench {
    pub(crate) cfg: Config,
    pub(crate) sim: Simulator,
    pub(crate) sshd: Sshd,
    /// The eic-ssh under test: this binary, which runs as eic-ssh with
    /// [`CHILD`] set, unless `--eic-ssh` names another.
    exe: PathBuf,
    pub(crate) user: String,
    pub(crate) work: tempfile::TempDir,
    /// The OpenSSH user key (and `.pub`), authorized for an hour.
    pub(crate) key: PathBuf,
    pub(crate) data: PathBuf,
    pub(crate) warm: ClientHome,
    pub(crate) has_time: bool,
    files: AtomicU64,
    pub(crate) targets: Vec<Target>,
    /// Peak RSS of `eic-ssh proxy` during the bulk transfers, kB.
    pub(crate) proxy_rss: Vec<f64>,
    /// Peak RSS of the embedded client during the bulk transfers, kB.
    pub(crate) embedded_rss: Vec<f64>,
    /// Other eic-ssh binaries measured beside the one under test
    /// (`--versus`), e.g. a build of main.
    pub(crate) versus: Vec<PathBuf>,
    /// `socat`, the do-nothing ProxyCommand of the bulk row's floor.
    pub(crate) socat: Option<PathBuf>,
}

impl Bench {
    /// A fresh HOME (empty AWS files, no known hosts) under the work
    /// directory, for the bench's simulator.
    pub(crate) fn fresh_home(&self) -> anyhow::Result<ClientHome> {
        Ok(self.sim.client_home_in(self.work.path())?)
    }

    /// A child's whole environment, with `home` (and the simulator it was
    /// made for) as HOME.
    pub(crate) fn env(&self, home: &ClientHome) -> Vec<(OsString, OsString)> {
        let mut env = home.env();
        // ssh passes it on to a ProxyCommand that re-executes us.
        env.push((CHILD.into(), "1".into()));
        env
    }

    /// `eic-ssh ARGS` with `home` as HOME.
    pub(crate) fn eic<S: AsRef<OsStr>>(&self, home: &ClientHome, args: &[S]) -> Cmd {
        Cmd {
            program: self.exe.clone().into(),
            args: args.iter().map(|a| a.as_ref().to_owned()).collect(),
            env: self.env(home),
        }
    }

    /// `eic-ssh ARGS` with the warm HOME.
    pub(crate) fn eic_warm<S: AsRef<OsStr>>(&self, args: &[S]) -> Cmd {
        self.eic(&self.warm, args)
    }

    /// `ssh` with the bench's key, no config file and no host-key memory.
    /// `opts` come first, so they win (ssh keeps the first value of an
    /// option). The key exchange defaults to the one eic-ssh negotiates with
    /// this sshd, so that both sides do the same work: OpenSSH 9.2's own
    /// default, sntrup761x25519, costs ~100 ms more per connection here.
    pub(crate) fn ssh(&self, opts: &[String], dest: &str, remote: &str) -> Cmd {
        let mut args: Vec<OsString> = vec!["-F".into(), "/dev/null".into()];
        args.extend(opts.iter().map(OsString::from));
        args.extend(
            [
                "-o",
                SAME_KEX,
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "UpdateHostKeys=no",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "LogLevel=ERROR",
                "-e",
                "none",
                "-i",
            ]
            .iter()
            .map(OsString::from),
        );
        args.push(self.key.clone().into());
        args.push(dest.into());
        args.push(remote.into());
        Cmd {
            program: "ssh".into(),
            args,
            env: self.env(&self.warm),
        }
    }

    /// `ssh` straight to the sshd.
    pub(crate) fn ssh_direct(&self, extra: &[&str], remote: &str) -> Cmd {
        let mut opts = vec!["-p".to_string(), self.sshd.addr.port().to_string()];
        opts.extend(extra.iter().map(|s| s.to_string()));
        self.ssh(&opts, &format!("{}@127.0.0.1", self.user), remote)
    }

    /// `ssh` through `eic-ssh proxy --no-push`, the proxy under GNU time
    /// when `time_file` is given.
    pub(crate) fn ssh_proxy(&self, extra: &[&str], remote: &str, time_file: Option<&Path>) -> Cmd {
        self.ssh_proxy_of(None, extra, remote, time_file)
    }

    /// [`Bench::ssh_proxy`], with `exe` (a `--versus` binary) as the proxy
    /// when given.
    pub(crate) fn ssh_proxy_of(
        &self,
        exe: Option<&Path>,
        extra: &[&str],
        remote: &str,
        time_file: Option<&Path>,
    ) -> Cmd {
        let exe = exe.unwrap_or(&self.exe);
        let command = format!("{} proxy --no-push %h %p", exe.display());
        self.ssh_via(&command, extra, remote, time_file)
    }

    /// `ssh` through a do-nothing ProxyCommand straight to the sshd: `socat`
    /// as it comes, or, where it is not installed, the bench's own relay
    /// (see [`crate::relay::relay`]).
    pub(crate) fn ssh_floor(&self, remote: &str, time_file: Option<&Path>) -> anyhow::Result<Cmd> {
        let addr = self.sshd.addr;
        let command = match &self.socat {
            Some(socat) => format!("{} - TCP:{}:{}", socat.display(), addr.ip(), addr.port()),
            None => {
                let bench = std::env::current_exe().context("locating this binary")?;
                format!("{} {RELAY} {addr}", bench.display())
            }
        };
        Ok(self.ssh_via(&command, &[], remote, time_file))
    }

    /// `ssh` with `command` as its ProxyCommand, under GNU time when
    /// `time_file` is given.
    fn ssh_via(
        &self,
        command: &str,
        extra: &[&str],
        remote: &str,
        time_file: Option<&Path>,
    ) -> Cmd {
        let proxy = match time_file {
            // ssh sends its ProxyCommand SIGHUP on exit, which would kill
            // GNU time before it reports: ignore it (inherited by eic-ssh,
            // which ends on stdin EOF anyway). `%%` is a literal `%` for ssh.
            Some(f) => format!(
                "sh -c \"trap '' HUP; exec {TIME} -f '{}' -o {} {command}\"",
                TIME_FORMAT.replace('%', "%%"),
                f.display()
            ),
            None => command.to_owned(),
        };
        let mut opts = vec!["-o".to_string(), format!("ProxyCommand={proxy}")];
        opts.extend(extra.iter().map(|s| s.to_string()));
        self.ssh(&opts, &self.target(), remote)
    }

    /// OpenSSH options (for ssh, scp and sftp alike) that reach the
    /// instance through `eic-ssh proxy --no-push` with the bench's key.
    pub(crate) fn openssh_proxy_opts(&self) -> Vec<OsString> {
        let proxy = format!("ProxyCommand={} proxy --no-push %h %p", self.exe.display());
        [
            "-F",
            "/dev/null",
            "-o",
            proxy.as_str(),
            "-o",
            SAME_KEX,
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "LogLevel=ERROR",
            "-i",
        ]
        .iter()
        .map(OsString::from)
        .chain(std::iter::once(self.key.clone().into_os_string()))
        .collect()
    }

    /// `USER@INSTANCE`.
    pub(crate) fn target(&self) -> String {
        format!("{}@{INSTANCE}", self.user)
    }

    /// A fresh file name in the work directory.
    pub(crate) fn file(&self, what: &str) -> PathBuf {
        let n = self.files.fetch_add(1, Ordering::Relaxed);
        self.work.path().join(format!("{what}-{n}"))
    }

    /// A GNU time output file, when GNU time is installed.
    pub(crate) fn time_file(&self) -> Option<PathBuf> {
        self.has_time.then(|| self.file("time"))
    }

    /// The simulator's added latency per API answer and per tunnel handshake.
    pub(crate) fn set_latency(&self, latency: Duration) {
        self.sim.set_api_latency(latency);
        self.sim.set_handshake_latency(latency);
    }

    /// Records a target for the summary and writes its line to `out`:
    /// `   target LINE: MEASURED → PASS` (or `FAIL`).
    pub(crate) fn check_target(
        &mut self,
        out: &mut String,
        what: &str,
        line: &str,
        measured: String,
        pass: bool,
    ) {
        let _ = writeln!(out, "   target {line}: {measured} → {}", verdict(pass));
        self.targets.push(Target {
            what: what.into(),
            measured,
            pass,
        });
    }
}

/// A progress line on stderr.
pub(crate) fn progress(msg: &str) {
    eprintln!("bench: {msg}");
}

/// Report text on stdout, flushed at once.
pub(crate) fn emit(text: &str) {
    print!("{text}");
    let _ = std::io::stdout().flush();
}

/// The simulator, the sshd, a user key authorized for an hour, the data
/// file, and a warm HOME (route cached, host key known).
pub(crate) async fn setup(cfg: Config) -> anyhow::Result<Bench> {
    progress("starting the simulator and sshd");
    let sim = Simulator::start(World::demo())
        .await
        .context("starting the simulator")?;
    let sshd = Sshd::start(&sim, INSTANCE)
        .await
        .context("starting sshd (needs root and openssh-server)")?;
    // cloud-init's console block, so that first contacts really verify.
    let mut console = String::from("-----BEGIN SSH HOST KEY KEYS-----\r\n");
    for k in &sshd.host_key_pubs {
        let two: Vec<&str> = k.split_whitespace().take(2).collect();
        let _ = write!(console, "{} root@ip-10-0-1-10\r\n", two.join(" "));
    }
    console.push_str("-----END SSH HOST KEY KEYS-----\r\n");
    sim.set_world(|w| {
        for i in &mut w.instances {
            if i.id == INSTANCE {
                i.console_output = Some(console.clone());
            }
        }
    });

    let exe = match &cfg.eic_ssh {
        Some(p) => std::path::absolute(p).with_context(|| format!("locating {}", p.display()))?,
        None => std::env::current_exe().context("locating this binary")?,
    };
    let mut versus = Vec::new();
    for p in &cfg.versus {
        versus.push(std::path::absolute(p).with_context(|| format!("locating {}", p.display()))?);
    }
    for exe in std::iter::once(&exe).chain(&versus) {
        if exe
            .to_string_lossy()
            .contains(|c: char| c.is_whitespace() || "'\"\\$`".contains(c))
        {
            bail!(
                "{} has characters a ProxyCommand cannot carry unquoted",
                exe.display()
            );
        }
    }
    let work = tempfile::Builder::new()
        .prefix("eic-ssh-bench-")
        .tempdir()?;
    let key = work.path().join("id_ed25519");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "eic-ssh-bench", "-f"])
        .arg(&key)
        .stdin(Stdio::null())
        .status()
        .context("running ssh-keygen")?;
    if !st.success() {
        bail!("ssh-keygen failed: {st}");
    }
    let warm = sim.client_home_in(work.path())?;
    let data = work.path().join("data");
    if cfg.row(2) || cfg.row(6) || cfg.row(7) {
        progress(&format!(
            "writing {} MB of pseudo-random data",
            cfg.bulk_bytes / MB
        ));
        write_data(&data, cfg.bulk_bytes)?;
    }
    let has_time = Path::new(TIME).is_file();
    let b = Bench {
        cfg,
        sim,
        sshd,
        exe,
        user: current_user(),
        work,
        key,
        data,
        warm,
        has_time,
        files: AtomicU64::new(0),
        targets: Vec::new(),
        proxy_rss: Vec::new(),
        embedded_rss: Vec::new(),
        versus,
        socat: on_path("socat"),
    };

    // Authorize the OpenSSH key for the whole run through the real
    // SendSSHPublicKey path: one `eic-ssh proxy` run, with a long lifetime.
    progress("pushing the OpenSSH user key (lifetime 1 h) through eic-ssh proxy");
    b.sim.set_key_lifetime(Duration::from_secs(3600));
    let pubkey = b.key.with_extension("pub");
    let args: Vec<OsString> = vec![
        "proxy".into(),
        "--no-cache".into(),
        "--public-key".into(),
        pubkey.into(),
        b.target().into(),
        "22".into(),
    ];
    let push = b.eic_warm(&args);
    let pushed = run_ok(&push, "eic-ssh proxy --public-key", Duration::from_secs(60)).await;
    b.sim.set_key_lifetime(Duration::from_secs(60));
    pushed?;
    run_ok(
        &b.ssh_direct(&[], "true"),
        "ssh straight to sshd with the pushed key",
        Duration::from_secs(30),
    )
    .await?;

    // Warm HOME: the route cached and the host key known.
    let target = b.target();
    run_ok(
        &b.eic_warm(&[target.as_str(), "--", "true"]),
        "eic-ssh warm-up",
        Duration::from_secs(60),
    )
    .await?;
    Ok(b)
}

/// `name` in one of `$PATH`'s directories, if it is there.
pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `$USER`, else what `id -un` says, else `root`.
fn current_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            std::process::Command::new("id")
                .arg("-un")
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        })
        .unwrap_or_else(|| "root".into())
}

/// `bytes` of xorshift noise (a 1 MB block, repeated): incompressible
/// enough for a transport that does not compress anyway.
fn write_data(path: &Path, bytes: u64) -> anyhow::Result<()> {
    let mut block = vec![0u8; MB as usize];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in block.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        let n = chunk.len();
        chunk.copy_from_slice(b.get(..n).unwrap_or_default());
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut left = bytes;
    while left > 0 {
        let n = left.min(MB) as usize;
        f.write_all(block.get(..n).unwrap_or_default())?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}
