//! Shared fixtures: a simulator with a real sshd behind one instance, a
//! hermetic HOME, and the binary run with standard AWS configuration only.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use eic_sim::sshd::Sshd;
use eic_sim::{ClientHome, Simulator, World};
use tokio::io::AsyncWriteExt;

pub const INSTANCE: &str = "i-0123456789abcdef0";
pub const STOPPED: &str = "i-0000000000000dead";
pub const NO_ENDPOINT: &str = "i-0fedcba9876543210";

/// One test's world: the simulator, a real sshd as the instance, and a
/// private HOME (with its own TMPDIR, `home.tmp()`).
pub struct Fixture {
    pub sim: Simulator,
    pub sshd: Sshd,
    pub home: ClientHome,
}

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Output {
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

impl Fixture {
    pub async fn new() -> Fixture {
        Fixture::with_world(World::demo()).await
    }

    pub async fn with_world(world: World) -> Fixture {
        Fixture::with_sshd_config(world, "").await
    }

    /// A fixture whose sshd has these extra `sshd_config` lines.
    pub async fn with_sshd_config(world: World, extra_config: &str) -> Fixture {
        let sim = Simulator::start(world).await.expect("simulator starts");
        let sshd = Sshd::start_with_config(&sim, INSTANCE, extra_config)
            .await
            .expect("sshd starts");
        let home = sim.client_home().expect("a client HOME");
        Fixture { sim, sshd, home }
    }

    /// The local user: the tests log in as whoever runs them.
    pub fn user(&self) -> String {
        std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| {
                let out = std::process::Command::new("id")
                    .arg("-un")
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout).trim().to_owned()
            })
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.home.known_hosts()
    }

    /// A hermetic environment: nothing from the developer's own AWS or SSH
    /// setup leaks in; AWS is reached through standard settings only.
    pub fn env(&self) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        let mut env = self.home.env();
        // Address discovery (doctor, restrict) stays on loopback too: the
        // simulator serves no address there, so it fails at once.
        env.push((
            "EIC_SSH_CHECKIP_URL".into(),
            format!("{}/checkip", self.sim.api_url()).into(),
        ));
        env
    }

    /// `program` with the hermetic environment.
    pub fn program(&self, program: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(program);
        cmd.env_clear().envs(self.env()).kill_on_drop(true);
        cmd
    }

    /// The eic-ssh binary with the hermetic environment.
    pub fn command(&self) -> tokio::process::Command {
        self.program(env!("CARGO_BIN_EXE_eic-ssh"))
    }

    /// Run `eic-ssh args...` with `stdin`, bounded in time.
    pub async fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        self.run_cmd(self.command(), args, stdin).await
    }

    pub async fn run_cmd(
        &self,
        mut cmd: tokio::process::Command,
        args: &[&str],
        stdin: &[u8],
    ) -> Output {
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("eic-ssh runs");
        let mut input = child.stdin.take().unwrap();
        let data = stdin.to_vec();
        let writer = tokio::spawn(async move {
            let _ = input.write_all(&data).await;
            drop(input);
        });
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "eic-ssh {args:?} did not finish within 60 s; sshd log:\n{}",
                    self.sshd.log()
                )
            })
            .unwrap();
        let _ = writer.await;
        Output {
            status: out.status.code(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `user@instance` for the default instance.
    pub fn target(&self) -> String {
        format!("{}@{INSTANCE}", self.user())
    }
}

/// Every regular file under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A loopback listener that never accepts, its one-place queue already
/// full: a connection to it stalls in the TCP handshake (the SYN goes
/// unanswered), as to a host behind a firewall that drops packets.
pub struct Blackhole {
    pub addr: std::net::SocketAddr,
    _listener: tokio::net::TcpListener,
    _filler: std::net::TcpStream,
}

impl Blackhole {
    pub fn on(ip: std::net::IpAddr) -> Blackhole {
        let socket = match ip {
            std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .unwrap();
        socket.bind((ip, 0).into()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let filler = std::net::TcpStream::connect(addr).unwrap();
        // The queue is full: a probe must now stall.
        assert!(
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err(),
            "a backlog-0 listener still completes connections here"
        );
        Blackhole {
            addr,
            _listener: listener,
            _filler: filler,
        }
    }
}

/// Send `signal` (e.g. `-INT`) to the process `pid`, with kill(1).
pub fn send_signal(pid: u32, signal: &str) {
    let st = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {signal} {pid}");
}
