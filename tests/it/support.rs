//! Shared fixtures: a simulator with a real sshd behind one instance, a
//! hermetic HOME, and the binary run with standard AWS configuration only;
//! and the helpers every test file uses: `#[async_test]`, the assertions on
//! an [`Output`] that show the whole output when they fail, a long-running
//! eic-ssh read line by line ([`Running`]), and waiting on a condition with
//! a deadline ([`eventually`]) instead of sleeping.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use eic_sim::sshd::Sshd;
use eic_sim::{ClientHome, Instance, Simulator, World};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// The one runtime set-up of every async test (see `crates/eic-test-macros`).
pub use eic_test_macros::async_test;

/// How long a test waits for something that should happen at once: long
/// enough for a loaded 2-core machine, short enough to fail in a CI run.
pub const WAIT: Duration = Duration::from_secs(30);

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

/// What a run of a program produced. The `assert_*` methods check one
/// thing each and, when it does not hold, show the exit status, stdout and
/// stderr whole; they return the output, so checks chain:
/// `out.assert_status(255).assert_stderr_contains("refused")`.
#[derive(Debug)]
pub struct Output {
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Output {
        Output {
            status: out.status.code(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self.status {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_owned(),
        };
        write!(
            f,
            "{status}\n--- stdout ---\n{}\n--- stderr ---\n{}--- end ---",
            self.stdout_str(),
            self.stderr
        )
    }
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The exit status is `code`.
    #[track_caller]
    pub fn assert_status(&self, code: i32) -> &Output {
        assert_eq!(
            self.status,
            Some(code),
            "expected exit status {code}:\n{self}"
        );
        self
    }

    /// The exit status is 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Output {
        self.assert_status(0)
    }

    /// stdout is exactly `expected`.
    #[track_caller]
    pub fn assert_stdout(&self, expected: &str) -> &Output {
        assert_eq!(self.stdout_str(), expected, "stdout differs:\n{self}");
        self
    }

    /// stdout holds `needle`.
    #[track_caller]
    pub fn assert_stdout_contains(&self, needle: impl AsRef<str>) -> &Output {
        self.check_holds("stdout", &self.stdout_str(), needle.as_ref(), true)
    }

    /// stdout holds every one of `needles`.
    #[track_caller]
    pub fn assert_stdout_contains_all<S: AsRef<str>>(
        &self,
        needles: impl IntoIterator<Item = S>,
    ) -> &Output {
        for needle in needles {
            self.assert_stdout_contains(needle);
        }
        self
    }

    /// stdout does not hold `needle`.
    #[track_caller]
    pub fn assert_stdout_lacks(&self, needle: impl AsRef<str>) -> &Output {
        self.check_holds("stdout", &self.stdout_str(), needle.as_ref(), false)
    }

    /// `text` (the stream `name`) holds `needle`, or does not: as `want`.
    #[track_caller]
    fn check_holds(&self, name: &str, text: &str, needle: &str, want: bool) -> &Output {
        let verb = if want { "lacks" } else { "holds" };
        assert!(
            text.contains(needle) == want,
            "{name} {verb} {needle:?}:\n{self}"
        );
        self
    }

    /// stderr is exactly `expected`.
    #[track_caller]
    pub fn assert_stderr(&self, expected: &str) -> &Output {
        assert_eq!(self.stderr, expected, "stderr differs:\n{self}");
        self
    }

    /// A connection failure (255, nothing on stdout) that names the step
    /// (e.g. `the TCP connection to HOST:443`) it timed out at, after
    /// `secs` seconds.
    #[track_caller]
    pub fn assert_timed_out(&self, secs: u64, step: &str) -> &Output {
        self.assert_status(255)
            .assert_stdout("")
            .assert_stderr_contains(format!("timed out after {secs} s waiting for {step}"))
    }

    /// stderr holds `needle`.
    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: impl AsRef<str>) -> &Output {
        self.check_holds("stderr", &self.stderr, needle.as_ref(), true)
    }

    /// stderr does not hold `needle`.
    #[track_caller]
    pub fn assert_stderr_lacks(&self, needle: impl AsRef<str>) -> &Output {
        self.check_holds("stderr", &self.stderr, needle.as_ref(), false)
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
        Fixture::with_sshd_setup(world, |_| extra_config.to_owned()).await
    }

    /// A fixture whose sshd has the extra `sshd_config` lines that `setup`
    /// returns, once the simulator (and its state directory, for files
    /// the lines name) is up.
    pub async fn with_sshd_setup(
        world: World,
        setup: impl FnOnce(&Simulator) -> String,
    ) -> Fixture {
        let sim = Simulator::start(world).await.expect("simulator starts");
        let extra_config = setup(&sim);
        let sshd = Sshd::start_with_config(&sim, INSTANCE, &extra_config)
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

    /// The operations the simulator answered so far, in order.
    pub fn ops(&self) -> Vec<String> {
        self.sim.request_log().into_iter().map(|e| e.op).collect()
    }

    /// No key was pushed and no tunnel opened.
    #[track_caller]
    pub fn assert_nothing_pushed_or_opened(&self) {
        let ops = self.ops();
        assert!(
            !ops.iter()
                .any(|o| o == "SendSSHPublicKey" || o == "OpenTunnel"),
            "{ops:?}"
        );
    }

    /// The attempts of `op` the simulator saw, as their HTTP statuses (0:
    /// never answered).
    pub fn attempts(&self, op: &str) -> Vec<u16> {
        self.sim
            .request_log()
            .into_iter()
            .filter(|e| e.op == op)
            .map(|e| e.status)
            .collect()
    }

    /// Nothing reached AWS: every refusal that should come before any
    /// network call.
    #[track_caller]
    pub fn assert_no_calls(&self) {
        assert_eq!(self.ops(), Vec::<String>::new(), "a call reached AWS");
    }

    /// Changes the instance `id` in the simulator's world.
    pub fn set_instance(&self, id: &str, change: impl FnOnce(&mut Instance)) {
        self.sim.set_world(|w| {
            let instance = w
                .instances
                .iter_mut()
                .find(|i| i.id == id)
                .unwrap_or_else(|| panic!("no instance {id} in the world"));
            change(instance);
        });
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

    /// `eic-ssh before... TARGET after... -- echo ok`: a session to the
    /// demo instance with these options around its target.
    pub async fn echo_ok(&self, before: &[&str], after: &[&str]) -> Output {
        let target = self.target();
        let args = [before, &[target.as_str()], after, &["--", "echo", "ok"]].concat();
        self.run(&args, b"").await
    }

    /// [`Fixture::run`] with these variables added to the environment.
    pub async fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut cmd = self.command();
        cmd.envs(env.iter().copied());
        self.run_cmd(cmd, args, b"").await
    }

    /// [`Fixture::run`] with these variables taken out of the environment.
    pub async fn run_without(&self, vars: &[&str], args: &[&str]) -> Output {
        let mut cmd = self.command();
        for var in vars {
            cmd.env_remove(var);
        }
        self.run_cmd(cmd, args, b"").await
    }

    /// `eic-ssh args...` left running, read line by line (stdin closed).
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut cmd = self.command();
        cmd.args(args);
        Running::start(cmd)
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
        out.into()
    }

    /// `user@instance` for the default instance.
    pub fn target(&self) -> String {
        format!("{}@{INSTANCE}", self.user())
    }

    /// The demo instance's whole route as flags (`--private-ip`,
    /// `--eice-id`, `--eice-dns`): with them, no EC2 lookup is made.
    pub fn route_flags(&self) -> Vec<String> {
        let dns = self.sim.eice_dns();
        [
            "--private-ip",
            "10.0.1.10",
            "--eice-id",
            "eice-0123456789abcdef0",
        ]
        .into_iter()
        .chain(["--eice-dns", &dns])
        .map(str::to_owned)
        .collect()
    }

    /// The tunnel alone, with the route given: `proxy --no-push`, no API
    /// call and no key push, so the only connection made is the tunnel's.
    pub fn tunnel_only(&self) -> Vec<String> {
        let mut args = vec!["proxy".to_owned(), "--no-push".to_owned()];
        args.extend(self.route_flags());
        args.push(INSTANCE.to_owned());
        args
    }
}

/// The output of `child` once it exits, waiting up to [`WAIT`]; `what`
/// names the exit waited for.
pub async fn exited(child: tokio::process::Child, what: &str) -> Output {
    tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {WAIT:?}"))
        .unwrap()
        .into()
}

/// `args` as the `&str`s that [`Fixture::run`] takes.
pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
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

/// The processes whose command line holds `marker` (a path or port unique
/// to one test), from /proc.
pub fn pids_with(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .collect()
}

/// Send `signal` (e.g. `-INT`) to the process `pid`, with kill(1).
pub fn send_signal(pid: u32, signal: &str) {
    let st = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {signal} {pid}");
}

/// A program left running (stdin closed), its stdout and stderr read line
/// by line as they come: for listeners, forwards and the background mode.
pub struct Running {
    pub child: tokio::process::Child,
    stdout: mpsc::UnboundedReceiver<String>,
    stderr: mpsc::UnboundedReceiver<String>,
    /// Every stderr line so far, and whether [`Running::line`] returned it.
    seen: Vec<(String, bool)>,
}

impl Running {
    /// Starts `cmd` with stdin closed and stdout and stderr read.
    pub fn start(mut cmd: tokio::process::Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the program starts");
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        Running {
            child,
            stdout,
            stderr,
            seen: Vec::new(),
        }
    }

    /// The next stderr line holding `needle` not returned before (earlier
    /// lines are kept for later calls), waiting up to [`WAIT`].
    pub async fn line(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some((line, returned)) = self
                .seen
                .iter_mut()
                .find(|(l, returned)| !*returned && l.contains(needle))
            {
                *returned = true;
                return line.clone();
            }
            match tokio::time::timeout_at(deadline, self.stderr.recv()).await {
                Ok(Some(l)) => self.seen.push((l, false)),
                Ok(None) => panic!(
                    "no line with {needle:?} before the program ended; its stderr:\n{}",
                    self.stderr_so_far()
                ),
                Err(_) => panic!(
                    "no line with {needle:?} within {WAIT:?}; stderr so far:\n{}",
                    self.stderr_so_far()
                ),
            }
        }
    }

    /// The next line on stdout, waiting up to [`WAIT`].
    pub async fn stdout_line(&mut self) -> String {
        match tokio::time::timeout(WAIT, self.stdout.recv()).await {
            Ok(Some(l)) => l,
            _ => panic!(
                "no line on stdout; stderr so far:\n{}",
                self.stderr_so_far()
            ),
        }
    }

    /// Every stderr line read so far.
    pub fn stderr_so_far(&self) -> String {
        self.seen
            .iter()
            .map(|(l, _)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Sends `signal` (e.g. `-INT`).
    pub fn signal(&self, signal: &str) {
        send_signal(self.child.id().expect("still running"), signal);
    }

    /// Waits up to [`WAIT`] for the exit status, and reads the rest of
    /// stderr.
    pub async fn status(&mut self) -> Option<i32> {
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "still running after {WAIT:?}; stderr so far:\n{}",
                    self.stderr_so_far()
                )
            })
            .unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        while let Ok(Some(l)) = tokio::time::timeout_at(deadline, self.stderr.recv()).await {
            self.seen.push((l, false));
        }
        status.code()
    }
}

/// The lines of `stream`, as they come, until it ends.
fn lines(
    stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits until `ready()` holds, checking every 20 ms, and fails the test
/// naming `what` after `within`: a condition with a deadline, never a
/// fixed sleep.
pub async fn eventually(what: &str, within: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !ready() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (20 s at most) until the remote process whose id a remote shell
/// wrote to `pid_file` has ended.
pub async fn remote_process_ends(pid_file: &Path) {
    let pid = std::fs::read_to_string(pid_file).unwrap();
    let proc = PathBuf::from(format!("/proc/{}", pid.trim()));
    eventually(
        "the remote command still runs",
        Duration::from_secs(20),
        || !proc.exists(),
    )
    .await;
}

/// A "what is my IP" service on loopback that answers every request with
/// 203.0.113.7; its URL, for EIC_SSH_CHECKIP_URL.
pub async fn checkip_service() -> String {
    use tokio::io::AsyncReadExt;
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", server.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = server.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n203.0.113.7\n")
                .await;
        }
    });
    url
}

/// Runs `cmd` (a tool, not eic-ssh under the fixture) to its end and
/// returns its stdout; it must succeed, else the test fails naming `what`
/// with its stderr.
#[track_caller]
pub fn stdout_of(mut cmd: std::process::Command, what: &str) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `n` random bytes.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut data = vec![0u8; n];
    rand::fill(&mut data[..]);
    data
}
