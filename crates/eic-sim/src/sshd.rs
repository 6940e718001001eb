//! A real OpenSSH server as the "instance", reading its authorized keys from
//! the simulator's key store through `AuthorizedKeysCommand`, exactly as an
//! EC2 instance with EC2 Instance Connect installed does.
//!
//! sshd insists that an `AuthorizedKeysCommand` and every directory above it
//! be owned by root and not writable by group or others, so this fixture
//! needs root and a state directory under a safe base (see
//! [`Simulator::start`](super::Simulator::start)). `start` says so clearly
//! when that is not the case.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};

use super::{Simulator, check_safe_path};

const SSHD_CANDIDATES: [&str; 3] = ["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"];
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const BIND_ATTEMPTS: usize = 5;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A running sshd serving one simulated instance. Killed on drop.
pub struct Sshd {
    /// Where it listens (127.0.0.1, or ::1 with [`Sshd::start_on`]); also
    /// set as the instance's `ssh` target.
    pub addr: SocketAddr,
    /// Its public host keys, as OpenSSH `known_hosts`-style key lines
    /// (`ssh-ed25519 AAAA… comment`).
    pub host_key_pubs: Vec<String>,
    sshd: PathBuf,
    dir: PathBuf,
    config: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    /// More `sshd_config` lines, e.g. `PubkeyAcceptedAlgorithms -ssh-ed25519`
    /// for an image that refuses ed25519 (FIPS mode).
    extra_config: String,
}

impl Sshd {
    /// Starts sshd for `instance_id` and points the instance's `ssh` target
    /// at it.
    pub async fn start(sim: &Simulator, instance_id: &str) -> io::Result<Sshd> {
        Sshd::start_with_config(sim, instance_id, "").await
    }

    /// [`Sshd::start`] with more `sshd_config` lines, such as
    /// `PubkeyAcceptedAlgorithms -ssh-ed25519` to refuse ed25519 keys as a
    /// FIPS-mode image does.
    pub async fn start_with_config(
        sim: &Simulator,
        instance_id: &str,
        extra_config: &str,
    ) -> io::Result<Sshd> {
        Sshd::start_on(
            sim,
            instance_id,
            std::net::Ipv4Addr::LOCALHOST.into(),
            extra_config,
        )
        .await
    }

    /// [`Sshd::start_with_config`] listening on `listen`: `::1` for an
    /// IPv6-only instance.
    pub async fn start_on(
        sim: &Simulator,
        instance_id: &str,
        listen: std::net::IpAddr,
        extra_config: &str,
    ) -> io::Result<Sshd> {
        if sim.world().instance(instance_id).is_none() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("instance {instance_id} is not in the simulator's world"),
            ));
        }
        let sshd = SSHD_CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "sshd not found (install openssh-server, or use the built-in server)",
                )
            })?;
        // Files we create are owned by our effective uid.
        if std::fs::metadata(sim.state_dir())?.uid() != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the real-sshd fixture needs root: sshd runs an AuthorizedKeysCommand only if \
                 root owns it (use the built-in server instead)",
            ));
        }
        check_safe_path(sim.authorized_keys_command())?;
        // Privilege separation needs this directory.
        let run = Path::new("/run/sshd");
        std::fs::create_dir_all(run)?;
        std::fs::set_permissions(run, std::fs::Permissions::from_mode(0o755))?;

        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let dir = sim.state_dir().join(format!("sshd-{instance_id}-{n}"));
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        std::fs::create_dir_all(dir.join("home"))?;

        let mut me = Sshd {
            addr: SocketAddr::new(listen, 0),
            host_key_pubs: Vec::new(),
            sshd,
            config: dir.join("sshd_config"),
            log_path: dir.join("sshd.log"),
            dir,
            child: None,
            extra_config: extra_config.to_owned(),
        };
        me.generate_host_key().await?;

        let script = sim.authorized_keys_command().to_path_buf();
        let mut last_err = None;
        for _ in 0..BIND_ATTEMPTS {
            // sshd cannot report the port it bound, so pick a free one,
            // release it and hand it to sshd; if something else grabs it in
            // between, sshd fails to bind and we try another.
            let port = std::net::TcpListener::bind((listen, 0))?
                .local_addr()?
                .port();
            me.addr = SocketAddr::new(listen, port);
            me.write_config(&script, instance_id)?;
            match me.spawn_and_wait().await {
                Ok(()) => {
                    let addr = me.addr;
                    sim.set_world(|w| {
                        if let Some(i) = w.instances.iter_mut().find(|i| i.id == instance_id) {
                            i.ssh = Some(addr);
                        }
                    });
                    return Ok(me);
                }
                Err(StartError::Bind(e)) => last_err = Some(e),
                Err(StartError::Other(e)) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("sshd could not bind a port")))
    }

    /// The directory SFTP sessions start in, and so where relative remote
    /// paths (`cp a i-…:~/b`) land: the sshd's own, never the real home of
    /// the user who runs it.
    pub fn sftp_home(&self) -> PathBuf {
        self.dir.join("home")
    }

    /// Everything sshd logged so far (it runs with `-e` and `LogLevel VERBOSE`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Replaces the host key with a new one and restarts sshd on the same
    /// port, for "host key changed" tests.
    pub async fn replace_host_key(&mut self) -> io::Result<()> {
        self.stop().await;
        self.generate_host_key().await?;
        let mut last_err = None;
        // The old process released the port, but give the kernel a few
        // tries in case a connection is still being torn down.
        for _ in 0..BIND_ATTEMPTS {
            match self.spawn_and_wait().await {
                Ok(()) => return Ok(()),
                Err(StartError::Bind(e)) => {
                    last_err = Some(e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(StartError::Other(e)) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("sshd could not rebind its port")))
    }

    fn host_key_path(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key")
    }

    async fn generate_host_key(&mut self) -> io::Result<()> {
        let key = self.host_key_path();
        let pubkey = key.with_extension("pub");
        for p in [&key, &pubkey] {
            match std::fs::remove_file(p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        let out = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "eic-ssh-sim-host",
                "-f",
            ])
            .arg(&key)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("running ssh-keygen: {e}")))?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "ssh-keygen failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        self.host_key_pubs = vec![std::fs::read_to_string(&pubkey)?.trim().to_string()];
        Ok(())
    }

    fn write_config(&self, script: &Path, instance_id: &str) -> io::Result<()> {
        let command_user = if std::fs::metadata(&self.dir)?.uid() == 0 {
            "root".to_string()
        } else {
            std::env::var("USER").unwrap_or_else(|_| "root".to_string())
        };
        let config = format!(
            "# Written by the eic-ssh simulator for {instance_id}.\n\
             ListenAddress {listen}\n\
             Port {port}\n\
             HostKey {host_key}\n\
             PidFile none\n\
             UsePAM no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             AuthorizedKeysFile none\n\
             AuthorizedKeysCommand {script} {instance_id} %u\n\
             AuthorizedKeysCommandUser {command_user}\n\
             PermitRootLogin prohibit-password\n\
             StrictModes no\n\
             LogLevel VERBOSE\n\
             AcceptEnv LANG LC_*\n\
             Subsystem sftp internal-sftp -d {sftp_home}\n\
             ClientAliveInterval 0\n\
             MaxStartups 100\n\
             MaxSessions 100\n\
             # The login is the local user, whose shell start-up files are the\n\
             # machine's: a command skips ~/.bashrc (bash reads it for sshd only\n\
             # below SHLVL 2), and a pyenv rehash that a login shell's files run\n\
             # never waits long on a lock that a session cut by a test left.\n\
             SetEnv SHLVL=1 PYENV_REHASH_TIMEOUT=1\n\
             {extra}\n",
            extra = self.extra_config,
            listen = self.addr.ip(),
            port = self.addr.port(),
            host_key = self.host_key_path().display(),
            script = script.display(),
            sftp_home = self.sftp_home().display(),
        );
        std::fs::write(&self.config, config)
    }

    async fn spawn_and_wait(&mut self) -> Result<(), StartError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(StartError::Other)?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let child = Command::new(&self.sshd)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                StartError::Other(io::Error::new(
                    e.kind(),
                    format!("starting {}: {e}", self.sshd.display()),
                ))
            })?;
        self.child = Some(child);
        let listening = format!(
            "Server listening on {} port {}",
            self.addr.ip(),
            self.addr.port()
        );
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            let log = self.log();
            let fresh = log.get(log_start as usize..).unwrap_or("");
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                let msg = format!("sshd exited ({status}) while starting; its log:\n{fresh}");
                return Err(
                    if fresh.contains("Address already in use") || fresh.contains("Cannot bind") {
                        StartError::Bind(io::Error::new(io::ErrorKind::AddrInUse, msg))
                    } else {
                        StartError::Other(io::Error::other(msg))
                    },
                );
            }
            // The log line proves it is our sshd on the port, the connect
            // that it accepts connections.
            if fresh.contains(&listening) && tokio::net::TcpStream::connect(self.addr).await.is_ok()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                self.stop().await;
                return Err(StartError::Other(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "sshd did not start listening within {READY_TIMEOUT:?}; its log:\n{fresh}"
                    ),
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

enum StartError {
    /// The port was taken: worth another try.
    Bind(io::Error),
    Other(io::Error),
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// Tests only: OpenSSH straight to a loopback server on `port` as `user`
/// with `key`, isolated from the caller's own SSH configuration.
#[cfg(test)]
pub(crate) fn openssh_command(key: &Path, port: u16, user: &str) -> std::process::Command {
    let mut ssh = std::process::Command::new("ssh");
    ssh.args([
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
    ])
    .args([
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
    ])
    .arg("-i")
    .arg(key)
    .arg("-p")
    .arg(port.to_string())
    .arg(format!("{user}@127.0.0.1"));
    ssh
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::World;

    fn can_run() -> bool {
        Path::new(SSHD_CANDIDATES[0]).is_file()
            && Path::new("/usr/bin/ssh").is_file()
            && std::fs::metadata("/proc/self")
                .map(|m| m.uid())
                .unwrap_or(1)
                == 0
    }

    async fn ssh_echo(sshd: &Sshd, key: &Path, user: &str) -> std::process::Output {
        let mut ssh = Command::from(openssh_command(key, sshd.addr.port(), user));
        ssh.arg("echo ok")
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn sshd_accepts_exactly_the_pushed_keys() {
        if !can_run() {
            eprintln!("skipped: needs root, sshd and ssh");
            return;
        }
        let sim = Simulator::start(World::demo()).await.unwrap();
        let mut sshd = Sshd::start(&sim, "i-0123456789abcdef0").await.unwrap();
        assert_eq!(
            sim.world().instance("i-0123456789abcdef0").unwrap().ssh,
            Some(sshd.addr)
        );
        assert!(sshd.host_key_pubs[0].starts_with("ssh-ed25519 "));

        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("id");
        let st = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(st.success());
        let pubkey = std::fs::read_to_string(key.with_extension("pub")).unwrap();

        let out = ssh_echo(&sshd, &key, "root").await;
        assert!(!out.status.success(), "no key pushed yet, yet login worked");

        sim.shared()
            .keys
            .push(
                "i-0123456789abcdef0",
                "root",
                pubkey.trim(),
                Duration::from_secs(60),
            )
            .unwrap();
        let out = ssh_echo(&sshd, &key, "root").await;
        assert!(
            out.status.success(),
            "ssh failed: {}\nsshd log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            sshd.log()
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");

        let old = sshd.host_key_pubs.clone();
        sshd.replace_host_key().await.unwrap();
        assert_ne!(old, sshd.host_key_pubs);
        let out = ssh_echo(&sshd, &key, "root").await;
        assert!(out.status.success(), "after restart: {}", sshd.log());
    }
}
