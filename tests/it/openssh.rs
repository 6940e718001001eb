//! The real OpenSSH client (ssh, scp, sftp) through `eic-ssh proxy` and
//! `eic-ssh tunnel`, to the simulator and a real sshd.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_eic-ssh");

/// A user key pair in the fixture's ~/.ssh, and an ssh_config that is the
/// `eic-ssh ssh-config` block plus test-only isolation settings.
pub(crate) async fn openssh_setup(f: &Fixture, proxy_extra: &str) -> PathBuf {
    let ssh_dir = f.home.path().join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let key = ssh_dir.join("id_ed25519");
    if !key.exists() {
        let st = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "test-user-key", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let out = f.run(&["ssh-config", "--user", &f.user()], b"").await;
    out.assert_success()
        .assert_stdout_contains("Host i-*")
        .assert_stdout_contains(format!(
            "ProxyCommand {} proxy --user '%r' '%h' '%p'",
            std::fs::canonicalize(BIN).unwrap().display()
        ));
    let block = out
        .stdout_str()
        .replace(" proxy --user", &format!(" proxy {proxy_extra} --user"));
    let config = f.home.path().join("ssh_config");
    std::fs::write(
        &config,
        format!(
            "{block}\n# Test isolation, for every host (the listener tests reach localhost).\nHost *\n    UserKnownHostsFile {kh}\n    GlobalKnownHostsFile /dev/null\n    StrictHostKeyChecking accept-new\n    IdentityFile {key}\n    IdentitiesOnly yes\n    BatchMode yes\n    LogLevel ERROR\n",
            kh = f.known_hosts().display(),
            key = key.display()
        ),
    )
    .unwrap();
    config
}

/// `tool -F config args…` (ssh, scp or sftp) with the fixture's hermetic
/// environment, which its ProxyCommand inherits.
fn openssh(f: &Fixture, tool: &str, config: &Path) -> tokio::process::Command {
    let mut cmd = f.program(tool);
    cmd.arg("-F").arg(config);
    cmd
}

/// Runs `cmd` to its end (stdin closed), bounded in time.
async fn output(mut cmd: tokio::process::Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tokio::time::timeout(2 * WAIT, cmd.output())
        .await
        .expect("finished in time")
        .unwrap()
        .into()
}

#[async_test]
async fn ssh_through_the_proxy_with_a_key_file() {
    let f = Fixture::new().await;
    let pubkey = f.home.path().join(".ssh/id_ed25519.pub");
    let config = openssh_setup(&f, &format!("--public-key {}", pubkey.display())).await;
    let mut ssh = openssh(&f, "ssh", &config);
    ssh.arg(f.target()).arg("echo ok; echo err >&2");
    output(ssh)
        .await
        .assert_success()
        .assert_stdout("ok\n")
        .assert_stderr_contains("err");
    // The key OpenSSH authenticated with is the one that was pushed.
    let pushed = f.sim.keys(INSTANCE, &f.user());
    let ours = std::fs::read_to_string(&pubkey).unwrap();
    let ours_b64 = ours.split_whitespace().nth(1).unwrap();
    assert!(pushed.iter().any(|k| k.contains(ours_b64)), "{pushed:?}");
    // OpenSSH recorded the host key under the instance ID, as eic-ssh does.
    let known = std::fs::read_to_string(f.known_hosts()).unwrap();
    assert!(known.contains(INSTANCE), "{known}");
}

#[async_test]
async fn ssh_through_the_proxy_with_the_agents_key() {
    let f = Fixture::new().await;
    let config = openssh_setup(&f, "").await;
    // Only the agent holds the key: no .pub file for the fallback to find.
    let key = f.home.path().join(".ssh/id_ed25519");
    std::fs::remove_file(f.home.path().join(".ssh/id_ed25519.pub")).unwrap();
    let sock = f.home.tmp().join("agent.sock");
    let mut agent = tokio::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    eventually("ssh-agent's socket", WAIT, || sock.exists()).await;
    let st = std::process::Command::new("ssh-add")
        .arg("-q")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &sock)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_file(&key).unwrap();

    let mut ssh = openssh(&f, "ssh", &config);
    ssh.env("SSH_AUTH_SOCK", &sock)
        .args(["-o", "IdentitiesOnly=no", "-o", "IdentityFile=none"])
        .arg(f.target())
        .arg("echo from-agent");
    output(ssh).await.assert_stdout("from-agent\n");
    let _ = agent.kill().await;
}

#[async_test]
async fn no_key_to_push_is_a_clear_error() {
    let f = Fixture::new().await;
    f.run(&["proxy", INSTANCE, "22"], b"")
        .await
        .assert_status(255)
        .assert_stderr_contains("no public key to push: looked at ssh-agent")
        .assert_stderr_contains("id_ed25519.pub");
    f.assert_no_calls();
}

#[async_test]
async fn scp_and_sftp_move_twenty_megabytes_intact() {
    let f = Fixture::new().await;
    let config = openssh_setup(&f, "").await;
    let data = random_bytes(20 * 1024 * 1024);
    let local = f.home.tmp().join("up.bin");
    std::fs::write(&local, &data).unwrap();
    let remote_dir = tempfile::tempdir().unwrap();
    let remote = remote_dir.path().join("remote.bin");

    let mut scp = openssh(&f, "scp", &config);
    scp.arg(&local)
        .arg(format!("{}:{}", f.target(), remote.display()));
    output(scp).await.assert_success();
    assert_eq!(
        Sha256::digest(std::fs::read(&remote).unwrap()),
        Sha256::digest(&data)
    );

    let down = f.home.tmp().join("down.bin");
    let mut scp = openssh(&f, "scp", &config);
    scp.arg(format!("{}:{}", f.target(), remote.display()))
        .arg(&down);
    output(scp).await.assert_success();
    assert_eq!(
        Sha256::digest(std::fs::read(&down).unwrap()),
        Sha256::digest(&data)
    );

    let via_sftp = f.home.tmp().join("sftp.bin");
    let batch = f.home.tmp().join("batch");
    std::fs::write(
        &batch,
        format!(
            "get {} {}\nput {} {}.2\n",
            remote.display(),
            via_sftp.display(),
            local.display(),
            remote.display()
        ),
    )
    .unwrap();
    let mut sftp = openssh(&f, "sftp", &config);
    sftp.arg("-b").arg(&batch).arg(f.target());
    output(sftp).await.assert_success();
    assert_eq!(
        Sha256::digest(std::fs::read(&via_sftp).unwrap()),
        Sha256::digest(&data)
    );
    let put = std::fs::read(format!("{}.2", remote.display())).unwrap();
    assert_eq!(Sha256::digest(put), Sha256::digest(&data));
}

/// Start `eic-ssh proxy` by hand and read the sshd banner through it.
async fn proxy_with_banner(
    f: &Fixture,
) -> (
    tokio::process::Child,
    tokio::process::ChildStdin,
    tokio::process::ChildStdout,
) {
    let mut cmd = f.command();
    cmd.args(["proxy", "--no-push", INSTANCE, "22"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut banner = [0u8; 8];
    tokio::time::timeout(WAIT, stdout.read_exact(&mut banner))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&banner, b"SSH-2.0-");
    (child, stdin, stdout)
}

/// The proxy's exit status, once it ends by itself. Without the watch on
/// each side it would wait on the tunnel for as long as TCP retries (or
/// for ever), far beyond this bound.
async fn exits(child: &mut tokio::process::Child) -> std::process::ExitStatus {
    tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("the proxy lingered")
        .unwrap()
}

#[async_test]
async fn the_proxy_exits_promptly_when_either_side_closes() {
    let f = Fixture::new().await;

    // stdin EOF (ssh went away).
    let (mut child, stdin, _stdout) = proxy_with_banner(&f).await;
    drop(stdin);
    let st = exits(&mut child).await;
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    assert!(st.success(), "{st}: {err}");

    // The endpoint closes the tunnel: non-zero, with a one-line reason.
    let (mut child, _stdin, _stdout) = proxy_with_banner(&f).await;
    let mut stderr = child.stderr.take().unwrap();
    f.sim.close_tunnels(1011, "simulated endpoint failure");
    let st = exits(&mut child).await;
    assert_eq!(st.code(), Some(255));
    let mut err = String::new();
    stderr.read_to_string(&mut err).await.unwrap();
    assert!(
        err.contains("closed by the endpoint (code 1011): simulated endpoint failure"),
        "{err}"
    );

    // Its stdout reader goes away while data is flowing.
    let (mut child, mut stdin, stdout) = proxy_with_banner(&f).await;
    drop(stdout);
    stdin.write_all(b"SSH-2.0-test\r\n").await.unwrap(); // makes sshd send its KEXINIT
    exits(&mut child).await;
}

/// `eic-ssh tunnel INSTANCE --local-port 0 extra…`, and the port it
/// printed.
pub(crate) async fn listener(cmd: tokio::process::Command, extra: &[&str]) -> (Running, u16) {
    let mut cmd = cmd;
    cmd.args(["tunnel", INSTANCE, "--local-port", "0"])
        .args(extra);
    let mut run = Running::start(cmd);
    let port = run.stdout_line().await;
    let port = port.trim().parse().expect("a port number");
    (run, port)
}

fn ssh_via_port(f: &Fixture, config: &Path, port: u16, command: &str) -> tokio::process::Command {
    let mut ssh = openssh(f, "ssh", config);
    ssh.args([
        "-o",
        "ProxyCommand=none",
        "-o",
        &format!("HostKeyAlias={INSTANCE}"),
        "-p",
        &port.to_string(),
    ])
    .arg(format!("{}@localhost", f.user()))
    .arg(command);
    ssh
}

#[async_test]
async fn the_listener_serves_concurrent_sessions_and_enforces_its_limit() {
    let f = Fixture::new().await;
    let config = openssh_setup(&f, "").await;
    let pubkey = f.home.path().join(".ssh/id_ed25519.pub");
    let (mut run, port) = listener(
        f.command(),
        &[
            "--push-key",
            "--public-key",
            pubkey.to_str().unwrap(),
            "-l",
            &f.user(),
            "--max-connections",
            "2",
        ],
    )
    .await;

    // Two sessions that stay open until this test lets them end: each
    // waits for its own file to appear.
    let release = f.home.tmp().join("release");
    let hold = |name: &str| {
        format!(
            "until [ -e {} ]; do sleep 0.05; done; echo {name}",
            release.display()
        )
    };
    let a = tokio::spawn(output(ssh_via_port(&f, &config, port, &hold("one"))));
    let b = tokio::spawn(output(ssh_via_port(&f, &config, port, &hold("two"))));
    // Wait until both are open, then a third is refused.
    run.line("opened").await;
    run.line("opened").await;
    let mut third = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, third.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the third connection was served");
    let refused = run.line("refused").await;
    assert!(refused.contains("--max-connections"), "{refused}");

    std::fs::write(&release, "").unwrap();
    a.await.unwrap().assert_success().assert_stdout("one\n");
    b.await.unwrap().assert_success().assert_stdout("two\n");
    for _ in 0..2 {
        let line = run.line("closed").await;
        assert!(
            line.contains("sent ") && line.contains("received "),
            "{line}"
        );
    }
}

#[async_test]
async fn rdp_port_3389_is_relayed_and_other_ports_refused_up_front() {
    let f = Fixture::new().await;
    // A plain TCP echo service stands in for RDP.
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    f.sim.set_world(|w| {
        for i in &mut w.instances {
            if i.id == INSTANCE {
                i.rdp = Some(echo_addr);
            }
        }
    });
    let (_run, port) = listener(f.command(), &["--remote-port", "3389"]).await;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"hello rdp").await.unwrap();
    let mut buf = [0u8; 9];
    tokio::time::timeout(WAIT, s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"hello rdp");

    let before = f.ops().len();
    f.run(
        &[
            "tunnel",
            INSTANCE,
            "--local-port",
            "0",
            "--remote-port",
            "23",
        ],
        b"",
    )
    .await
    .assert_status(2)
    .assert_stderr_contains("port '23' is not allowed");
    assert_eq!(f.ops().len(), before, "a call reached AWS");
}

#[async_test]
async fn ctrl_c_stops_accepting_and_lets_open_connections_finish() {
    let f = Fixture::new().await;
    let config = openssh_setup(&f, "").await;
    let pubkey = f.home.path().join(".ssh/id_ed25519.pub");
    let (mut run, port) = listener(
        f.command(),
        &[
            "--push-key",
            "--public-key",
            pubkey.to_str().unwrap(),
            "-l",
            &f.user(),
        ],
    )
    .await;
    // A session that lasts until this test lets it end.
    let release = f.home.tmp().join("release");
    let session = tokio::spawn(output(ssh_via_port(
        &f,
        &config,
        port,
        &format!(
            "echo started; until [ -e {} ]; do sleep 0.05; done; echo finished",
            release.display()
        ),
    )));
    run.line("opened").await;
    run.signal("-INT");
    run.line("stopped accepting").await;
    // New connections are refused at once...
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
    );
    // ...while the open one completes.
    std::fs::write(&release, "").unwrap();
    session
        .await
        .unwrap()
        .assert_success()
        .assert_stdout("started\nfinished\n");
    assert_eq!(run.status().await, Some(0), "{}", run.stderr_so_far());
}
