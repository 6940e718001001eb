//! The connection log and session recordings: whole lines from many
//! processes at once, request IDs that match the service's, no secret, a
//! start line that survives `kill -9`, rotation, `eic-ssh log`, and a
//! recording checked by a real asciinema and played back by `eic-ssh play`.

use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::interactive::Pane;
use crate::support::*;

/// The default log in the fixture's HOME.
fn default_log(f: &Fixture) -> PathBuf {
    f.home.path().join(".local/state/eic-ssh/connections.jsonl")
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every line of `text` as a JSON object; a torn or merged line fails.
fn records(text: &str) -> Vec<Value> {
    assert!(
        text.ends_with('\n'),
        "the log does not end with a newline:\n{text}"
    );
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not one JSON record ({e}): {l}\nin:\n{text}"));
            assert!(v.is_object(), "{l}");
            v
        })
        .collect()
}

fn by_event<'a>(all: &'a [Value], event: &str) -> Vec<&'a Value> {
    all.iter().filter(|r| r["event"] == event).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_connections_log_forty_whole_lines_that_match_the_service() {
    let f = Fixture::new().await;
    // Temporary credentials: the session token must not reach the log.
    let creds = f.sim.session_credentials();
    let token = creds.session_token.clone().unwrap();
    let mut runs = Vec::new();
    for n in 0..20 {
        let mut cmd = f.command();
        cmd.env("AWS_ACCESS_KEY_ID", &creds.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &creds.secret_access_key)
            .env("AWS_SESSION_TOKEN", &token)
            .args(["exec", &f.target(), "--", &format!("echo run-{n}")])
            .stdin(Stdio::null());
        runs.push(tokio::spawn(async move { cmd.output().await.unwrap() }));
    }
    for (n, run) in runs.into_iter().enumerate() {
        let out = tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .unwrap()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(&format!("run-{n}")),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let path = default_log(&f);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let text = std::fs::read_to_string(&path).unwrap();
    let all = records(&text);
    assert_eq!(all.len(), 40, "{text}");
    let (starts, ends) = (by_event(&all, "start"), by_event(&all, "end"));
    assert_eq!((starts.len(), ends.len()), (20, 20), "{text}");

    let uid = rustix::process::getuid().as_raw();
    let mut commands = BTreeSet::new();
    for s in &starts {
        let id = s["id"].as_str().unwrap();
        let ends_of: Vec<_> = ends.iter().filter(|e| e["id"] == id).collect();
        assert_eq!(ends_of.len(), 1, "{id} in:\n{text}");
        let end = ends_of[0];
        assert_eq!(s["kind"], "exec", "{s}");
        assert_eq!(s["instance_id"], INSTANCE);
        assert_eq!(s["endpoint_id"], "eice-0123456789abcdef0");
        assert_eq!(s["private_ip"], "10.0.1.10");
        assert_eq!(s["remote_port"], 22);
        assert_eq!(s["os_user"], f.user().as_str());
        assert_eq!(s["target"], f.target().as_str());
        assert_eq!(s["local_user"], f.user().as_str());
        assert_eq!(s["uid"], uid);
        assert_eq!(s["aws_profile"], "default");
        assert_eq!(s["region"], "us-east-1");
        assert_eq!(s["access_key_id"], creds.access_key_id.as_str());
        assert!(
            s["key_sha256"].as_str().unwrap().starts_with("SHA256:"),
            "{s}"
        );
        assert!(s["pid"].as_u64().unwrap() > 0);
        commands.insert(s["command"].as_str().unwrap().to_owned());
        assert_eq!(end["exit_status"], 0, "{end}");
        assert_eq!(end["error"], Value::Null, "{end}");
        assert_eq!(end["instance_id"], INSTANCE);
        assert_eq!(end["pid"], s["pid"]);
        assert!(end["bytes_sent"].as_u64().unwrap() > 0, "{end}");
        assert!(end["bytes_received"].as_u64().unwrap() > 0, "{end}");
    }
    let expected: BTreeSet<String> = (0..20).map(|n| format!("echo run-{n}")).collect();
    assert_eq!(commands, expected);

    // The request IDs are the ones the service answered: each key push and
    // each tunnel it let through, no more, no fewer.
    let log = f.sim.request_log();
    let answered = |op: &str, status: u16| -> BTreeSet<String> {
        log.iter()
            .filter(|e| e.op == op && e.status == status)
            .map(|e| e.request_id.clone().unwrap())
            .collect()
    };
    let logged = |field: &str| -> BTreeSet<String> {
        starts
            .iter()
            .map(|s| s[field].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(logged("push_request_id"), answered("SendSSHPublicKey", 200));
    assert_eq!(logged("tunnel_request_id"), answered("OpenTunnel", 101));
    assert_eq!(logged("tunnel_request_id").len(), 20);

    // No secret anywhere in the file: not the credentials, not one of the
    // signatures the service was sent (the key pushes' and the presigned
    // tunnel URLs').
    for secret in [creds.secret_access_key.as_str(), token.as_str()] {
        assert!(!text.contains(secret), "a secret is in the log:\n{text}");
    }
    let signatures = f.sim.signatures_seen();
    assert!(signatures.len() >= 40, "{signatures:?}");
    for sig in &signatures {
        assert!(
            !text.contains(sig.as_str()),
            "signature {sig} in the log:\n{text}"
        );
    }
    for never in [
        "X-Amz-Signature",
        "Signature=",
        "PRIVATE KEY",
        "X-Amz-Security-Token",
    ] {
        assert!(!text.contains(never), "{never} in the log:\n{text}");
    }

    // `log --cloudtrail ID` finds that connection's push and tunnel, by a
    // prefix of its ID, without calling AWS.
    let one = starts[7];
    let id = one["id"].as_str().unwrap();
    let calls = f.sim.request_log().len();
    let out = f.run(&["log", "--cloudtrail", &id[..8]], b"").await;
    out.assert_status(0);
    let printed = out.stdout_str();
    let push = one["push_request_id"].as_str().unwrap();
    let tunnel = one["tunnel_request_id"].as_str().unwrap();
    assert!(
        printed.contains(&format!(
            "--lookup-attributes AttributeKey=EventName,AttributeValue=SendSSHPublicKey --query \"Events[?contains(CloudTrailEvent, '{push}')]\""
        )),
        "{printed}"
    );
    assert!(
        printed.contains(&format!(
            "AttributeValue=OpenTunnel --query \"Events[?contains(CloudTrailEvent, '{tunnel}')]\""
        )),
        "{printed}"
    );
    assert!(printed.contains("aws cloudtrail lookup-events --region us-east-1 --start-time "));
    assert_eq!(f.sim.request_log().len(), calls, "log called AWS");
    let out = f.run(&["log", "--cloudtrail", "ffffffffffff"], b"").await;
    out.assert_status(1);
    out.assert_stderr_contains("no connection ffffffffffff");

    // The table: the 20 connections, each with its user and status.
    let out = f.run(&["log", "--instance", INSTANCE], b"").await;
    let table = out.stdout_str();
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("TIME"), "{table}");
    assert_eq!(rows.len(), 21, "{table}");
    let who = format!("{} as {}", f.user(), f.user());
    assert!(
        rows[1..]
            .iter()
            .all(|r| r.contains(&who) && r.ends_with("exit 0") && r.contains(" exec ")),
        "{table}"
    );
    let out = f
        .run(&["log", "--instance", "i-0000000000000dead"], b"")
        .await;
    assert_eq!(out.stdout_str(), "", "{}", out.stderr);
}

/// Wait (bounded) until the log at `path` holds a record that `want` accepts.
async fn wait_for_record(path: &Path, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(v) = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| want(v))
        {
            return v;
        }
        assert!(Instant::now() < deadline, "no such record in:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_killed_with_sigkill_leaves_its_start_line() {
    let f = Fixture::new().await;
    let path = default_log(&f);
    // EIC_SSH_RECORD_DIR records every session, a command's too.
    let casts = f.home.path().join("env-casts");
    let mut child = f
        .command()
        .env("EIC_SSH_RECORD_DIR", &casts)
        .args([&f.target(), "--", "echo started; sleep 60"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The remote command runs: the tunnel is open and its start logged.
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while !String::from_utf8_lossy(&seen).contains("started") {
            let mut buf = [0u8; 64];
            let n = tokio::io::AsyncReadExt::read(&mut stdout, &mut buf)
                .await
                .unwrap();
            assert!(n > 0, "eic-ssh ended early");
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .unwrap();
    let start = wait_for_record(&path, |v| v["event"] == "start").await;
    assert_eq!(start["kind"], "session");
    assert_eq!(start["command"], "echo started; sleep 60");

    // While it runs, `log` says it is open.
    let out = f.run(&["log"], b"").await;
    let row = out
        .stdout_str()
        .lines()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    assert!(row.ends_with("open"), "{}", out.stdout_str());

    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let all = records(&text);
    assert_eq!(all.len(), 1, "{text}");
    assert_eq!(all[0], start);
    let out = f.run(&["log"], b"").await;
    assert!(
        out.stdout_str()
            .contains("no end line: its process is gone"),
        "{}",
        out.stdout_str()
    );
    let out = f.run(&["log", "--json"], b"").await;
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["start"], start);
    assert_eq!(json[0]["end"], Value::Null);
    assert_eq!(json[0]["open"], false);

    // The recording, cut by the kill, keeps what came before it: each event
    // is written as it happens.
    let found = files_under(&casts);
    let [cast] = found.as_slice() else {
        panic!("one recording in {}: {found:?}", casts.display());
    };
    let id = start["id"].as_str().unwrap();
    assert!(
        cast.to_string_lossy()
            .ends_with(&format!("-{INSTANCE}-{id}.cast")),
        "{}",
        cast.display()
    );
    assert_eq!(mode(cast), 0o600);
    let text = std::fs::read_to_string(cast).unwrap();
    assert!(text.ends_with('\n'), "{text}");
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2, "{text}");
    let output: String = lines
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e[1] == "o")
        .map(|e| e[2].as_str().unwrap().to_owned())
        .collect();
    assert!(output.contains("started"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_rotates_at_its_limit_and_log_json_gives_back_every_record() {
    let f = Fixture::new().await;
    let path = f.home.path().join("audit").join("tunnels.jsonl");
    let file = path.to_string_lossy().into_owned();
    // One `proxy` connection writes about 1.3 KB (start and end); 2 KB a
    // file rotates often.
    let proxy = |extra: &[&str]| {
        let mut cmd = f.command();
        cmd.env("EIC_SSH_LOG_FILE", &file)
            .env("EIC_SSH_LOG_MAX_SIZE", "2K")
            .env("EIC_SSH_LOG_KEEP", "2");
        let mut args = vec!["proxy", INSTANCE, "22", "--no-push"];
        args.extend_from_slice(extra);
        (cmd, args.into_iter().map(String::from).collect::<Vec<_>>())
    };
    for _ in 0..7 {
        let (cmd, args) = proxy(&[]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = f.run_cmd(cmd, &args, b"").await;
        out.assert_status(0);
    }
    // --no-log: nothing more.
    let before = std::fs::read_to_string(&path).unwrap();
    let (cmd, args) = proxy(&["--no-log"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(f.run_cmd(cmd, &args, b"").await.status, Some(0));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    // Only the file asked for: the default place holds nothing.
    assert!(!default_log(&f).exists());

    let rotated = |n: u32| path.with_file_name(format!("tunnels.jsonl.{n}"));
    assert!(rotated(1).exists() && rotated(2).exists(), "no rotation");
    assert!(!rotated(3).exists(), "more old files than kept");
    let mut on_disk: HashMap<String, (Option<Value>, Option<Value>)> = HashMap::new();
    for p in [rotated(2), rotated(1), path.clone()] {
        assert_eq!(mode(&p), 0o600, "{}", p.display());
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.len() <= 2048,
            "{} is {} bytes",
            p.display(),
            text.len()
        );
        for r in records(&text) {
            let id = r["id"].as_str().unwrap().to_owned();
            let slot = on_disk.entry(id).or_default();
            match r["event"].as_str() {
                Some("start") => slot.0 = Some(r),
                _ => slot.1 = Some(r),
            }
        }
    }
    // The newest connection is whole in the current file.
    let last = records(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(last.last().unwrap()["event"], "end");
    assert_eq!(last.last().unwrap()["exit_status"], 0);
    // The endpoint's answer to the close: a close frame (1005: no code).
    assert!(last.last().unwrap()["close_code"].is_u64(), "{last:?}");

    // `log --json` reads across the files and gives back every record as
    // it is on disk, paired.
    let out = f
        .run(&["log", "--json", "-n", "0", "--log-file", &file], b"")
        .await;
    out.assert_status(0);
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.len(), on_disk.len());
    for entry in &listed {
        let id = entry["id"].as_str().unwrap();
        let (start, end) = &on_disk[id];
        assert_eq!(entry["start"], start.clone().unwrap_or(Value::Null), "{id}");
        assert_eq!(entry["end"], end.clone().unwrap_or(Value::Null), "{id}");
        if let Some(s) = start {
            assert_eq!(s["kind"], "proxy");
            assert_eq!(s["os_user"], Value::Null);
            assert_eq!(s["key_sha256"], Value::Null);
            assert_eq!(s["push_request_id"], Value::Null);
        }
    }
    // Oldest first; the newest pairs are whole.
    let ids: Vec<&str> = listed.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.last(), last.last().unwrap()["id"].as_str().as_ref());
    let out = f.run(&["log", "-n", "2", "--log-file", &file], b"").await;
    assert_eq!(out.stdout_str().lines().count(), 3, "{}", out.stdout_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_session_plays_in_asciinema_and_in_eic_ssh_play() {
    let f = Fixture::new().await;
    let dir = f.home.path().join("casts");
    let log = f.home.path().join("log.jsonl");
    let pane = Pane::start(
        &f,
        &format!(
            "--log-file {} --record={} {}",
            log.display(),
            dir.display(),
            f.target()
        ),
    );
    pane.type_line("echo recorded-$((6*7))-marker");
    pane.wait_for("recorded-42-marker").await;
    let start = wait_for_record(&log, |v| v["event"] == "start").await;

    // A resize during the session is an `r` event.
    pane.tmux(&["resize-window", "-t", "0", "-x", "120", "-y", "40"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let cast = loop {
        let found: Vec<PathBuf> = files_under(&dir);
        if let [one] = found.as_slice()
            && std::fs::read_to_string(one)
                .unwrap_or_default()
                .contains("\"r\", \"120x40\"")
        {
            break one.clone();
        }
        assert!(Instant::now() < deadline, "no resize event in {found:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    pane.type_line("echo size-$(stty size | tr ' ' x)");
    pane.wait_for("size-40x120").await;
    pane.type_line("exit");
    assert_eq!(pane.status(Duration::from_secs(20)).await, 0);

    // The file: user-only, in a user-only directory, named in the end line.
    assert_eq!(mode(&cast), 0o600);
    assert_eq!(mode(&dir), 0o700);
    let end = wait_for_record(&log, |v| v["event"] == "end").await;
    assert_eq!(end["id"], start["id"]);
    assert_eq!(end["recording"], cast.to_string_lossy().as_ref());
    assert_eq!(end["exit_status"], 0);
    let text = std::fs::read_to_string(&cast).unwrap();
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert_eq!(
        (header["width"].as_u64(), header["height"].as_u64()),
        (Some(100), Some(30))
    );
    assert_eq!(header["env"]["TERM"], "xterm-256color");
    assert!(
        header["title"].as_str().unwrap().contains(INSTANCE),
        "{header}"
    );
    assert!(header["timestamp"].as_u64().unwrap() > 1_700_000_000);
    let mut last = 0.0;
    for l in lines {
        let e: Value = serde_json::from_str(l).unwrap();
        let t = e[0].as_f64().unwrap();
        assert!(t >= last, "times go back: {l}");
        last = t;
        // Keystrokes are kept only with --record-input.
        assert_ne!(e[1], "i", "{l}");
    }

    // Neither the recording nor the log holds a secret: the credentials
    // or a signature of the presigned URL or of the key push.
    let logged = std::fs::read_to_string(&log).unwrap();
    let creds = f.sim.credentials();
    let signatures = f.sim.signatures_seen();
    assert!(
        signatures.len() >= 2,
        "no push and tunnel signed: {signatures:?}"
    );
    for secret in signatures
        .iter()
        .map(String::as_str)
        .chain([creds.secret_access_key.as_str()])
    {
        for (name, written) in [("recording", &text), ("log", &logged)] {
            assert!(
                !written.contains(secret),
                "{secret} in the {name}:\n{written}"
            );
        }
    }

    // A real asciinema reads it and shows the remote output.
    let out = std::process::Command::new("python3")
        .args(["-m", "asciinema", "cat"])
        .arg(&cast)
        .env("HOME", f.home.path())
        .output()
        .expect("python3 -m asciinema (pip install asciinema)");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for text in ["recorded-42-marker", "size-40x120"] {
        assert!(shown.contains(text), "asciinema cat lacks {text}:\n{shown}");
    }

    // `eic-ssh play` shows the same text in a terminal, fast.
    let player = Pane::start(&f, &format!("play --speed 100 {}", cast.display()));
    assert_eq!(player.status(Duration::from_secs(20)).await, 0);
    let screen = player.screen();
    for text in ["recorded-42-marker", "size-40x120"] {
        assert!(screen.contains(text), "play lacks {text}:\n{screen}");
    }
}

/// Send `sig` (e.g. `-INT`) to `child`.
fn signal(child: &tokio::process::Child, sig: &str) {
    let pid = child.id().unwrap().to_string();
    let st = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap();
    assert!(st.success());
}

async fn ends_with(child: &mut tokio::process::Child) -> Option<i32> {
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("eic-ssh ends")
        .unwrap()
        .code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cp_forwards_and_tunnel_log_their_connections_too() {
    let f = Fixture::new().await;
    let path = default_log(&f);

    // `cp`: one connection, its key pushed, its bytes counted.
    let local = f.home.path().join("up.bin");
    std::fs::write(&local, vec![7u8; 100_000]).unwrap();
    let copied = f.home.path().join("copied.bin");
    let out = f
        .run(
            &[
                "cp",
                local.to_str().unwrap(),
                &format!("{}:{}", f.target(), copied.display()),
            ],
            b"",
        )
        .await;
    out.assert_status(0);
    assert_eq!(std::fs::read(&copied).unwrap().len(), 100_000);
    let cp = wait_for_record(&path, |v| v["kind"] == "cp").await;
    assert_eq!(cp["target"], f.target().as_str());
    assert_eq!(cp["os_user"], f.user().as_str());
    assert_eq!(cp["command"], Value::Null);
    assert!(cp["push_request_id"].is_string(), "{cp}");
    assert!(cp["tunnel_request_id"].is_string(), "{cp}");
    let end = wait_for_record(&path, |v| v["event"] == "end" && v["id"] == cp["id"]).await;
    assert_eq!(end["exit_status"], 0, "{end}");
    assert!(end["bytes_sent"].as_u64().unwrap() > 100_000, "{end}");

    // `-N -L`: a `forward` connection with its forwards, ended by ^C once
    // it forwards.
    let mut forward = f
        .command()
        .args(["-v", "-N", "-L", "0:127.0.0.1:9", &f.target()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        forward.stderr.take().unwrap(),
    ));
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if line.contains("forwarding ") {
                return;
            }
        }
        panic!("it ended before forwarding");
    })
    .await
    .expect("-L forwards");
    // Keep reading, so that its stderr never fills.
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    let fwd = wait_for_record(&path, |v| v["kind"] == "forward").await;
    assert_eq!(
        fwd["forwards"],
        serde_json::json!(["-L localhost:0:127.0.0.1:9"])
    );
    assert_eq!(fwd["command"], Value::Null);
    signal(&forward, "-INT");
    assert_eq!(ends_with(&mut forward).await, Some(0));
    let end = wait_for_record(&path, |v| v["event"] == "end" && v["id"] == fwd["id"]).await;
    assert_eq!(end["exit_status"], 0, "{end}");

    // `tunnel`: each connection it accepts is one, with no key pushed.
    let mut tunnel = f
        .command()
        .args(["tunnel", INSTANCE, "--local-port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(tunnel.stdout.take().unwrap()));
    let port: u16 = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
        .await
        .expect("the listener printed its port")
        .unwrap()
        .unwrap_or_default()
        .trim()
        .parse()
        .expect("a port number");
    let mut client = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut banner = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while !banner.ends_with(b"\n") {
            let mut buf = [0u8; 256];
            let n = tokio::io::AsyncReadExt::read(&mut client, &mut buf)
                .await
                .unwrap();
            assert!(n > 0, "closed before the banner");
            banner.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("sshd's banner through the tunnel");
    assert!(banner.starts_with(b"SSH-2.0-"));
    drop(client);
    let tun = wait_for_record(&path, |v| v["kind"] == "tunnel").await;
    assert_eq!(tun["target"], INSTANCE);
    assert_eq!(tun["os_user"], Value::Null);
    assert_eq!(tun["key_sha256"], Value::Null);
    assert!(tun["tunnel_request_id"].is_string(), "{tun}");
    let end = wait_for_record(&path, |v| v["event"] == "end" && v["id"] == tun["id"]).await;
    assert!(
        end["bytes_received"].as_u64().unwrap() >= banner.len() as u64,
        "{end}"
    );
    signal(&tunnel, "-INT");
    ends_with(&mut tunnel).await;

    // Six whole lines, paired; `log --since` the tunnel's start shows it
    // alone, and the last hour all three.
    let all = records(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(all.len(), 6, "{all:?}");
    let kinds: Vec<&str> = by_event(&all, "start")
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["cp", "forward", "tunnel"]);
    let since = tun["time"].as_str().unwrap();
    let out = f.run(&["log", "--since", since], b"").await;
    out.assert_status(0);
    let rows: Vec<String> = out.stdout_str().lines().map(str::to_owned).collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[1].contains(" tunnel "), "{rows:?}");
    let out = f.run(&["log", "--since", "1h", "--json"], b"").await;
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.len(), 3, "{}", out.stdout_str());
}
