//! Plain OpenSSH through the `ssh-config` block verifies the host as eic-ssh
//! does, by Name or ID, on a first contact with a fresh known_hosts: its
//! `KnownHostsCommand` answers with the keys recorded under the instance ID
//! or the console-verified one, and never with a key nothing vouches for.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

/// The console text cloud-init prints, listing `keys` (OpenSSH lines).
fn console_listing(keys: &[String]) -> String {
    let mut text = String::from("[    0.000000] Linux version 6.1.0\r\n");
    text.push_str("-----BEGIN SSH HOST KEY KEYS-----\r\n");
    for k in keys {
        let two: Vec<&str> = k.split_whitespace().take(2).collect();
        text.push_str(&format!("{} root@ip-10-0-1-10\r\n", two.join(" ")));
    }
    text.push_str("-----END SSH HOST KEY KEYS-----\r\nip-10-0-1-10 login: ");
    text
}

fn set_console(f: &Fixture, text: Option<String>) {
    f.sim.set_world(|w| {
        for i in &mut w.instances {
            if i.id == INSTANCE {
                i.console_output = text.clone();
            }
        }
    });
}

/// A user key, and an ssh_config that is the `ssh-config --host 'i-* web-*'`
/// block as written, plus isolation: no StrictHostKeyChecking of its own, so
/// ssh's default (ask, which BatchMode turns into a refusal) applies.
async fn written_config(f: &Fixture) -> PathBuf {
    let ssh_dir = f.home.path().join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let key = ssh_dir.join("id_ed25519");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let out = f
        .run(
            &["ssh-config", "--host", "i-* web-*", "--user", &f.user()],
            b"",
        )
        .await;
    out.assert_status(0);
    let block = out.stdout_str();
    assert!(block.contains("KnownHostsCommand "), "{block}");
    let config = f.home.path().join("ssh_config");
    std::fs::write(
        &config,
        format!(
            "{block}\nHost *\n    UserKnownHostsFile {}\n    GlobalKnownHostsFile /dev/null\n    IdentityFile {}\n    IdentitiesOnly yes\n",
            f.known_hosts().display(),
            key.display()
        ),
    )
    .unwrap();
    config
}

/// `ssh -F config -o BatchMode=yes HOST echo verified`.
async fn ssh(f: &Fixture, config: &PathBuf, host: &str) -> std::process::Output {
    let mut cmd = f.program("ssh");
    cmd.arg("-F")
        .arg(config)
        .args(["-o", "BatchMode=yes", host, "echo", "verified"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("ssh finished within 60 s")
        .unwrap()
}

fn recorded(f: &Fixture) -> String {
    std::fs::read_to_string(f.known_hosts()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_ssh_verifies_a_first_contact_by_name_and_by_id() {
    let f = Fixture::new().await;
    let config = written_config(&f).await;
    set_console(&f, Some(console_listing(&f.sshd.host_key_pubs)));

    // By Name, known_hosts empty: verified against the console, recorded
    // under the instance ID (not the Name, which may move).
    let out = ssh(&f, &config, "web-1").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.stdout, b"verified\n", "{stderr}\n{}", f.sshd.log());
    assert!(
        stderr.contains("verified against the instance's console output and permanently added"),
        "{stderr}"
    );
    let known = recorded(&f);
    assert!(known.starts_with(INSTANCE), "{known}");
    assert!(!known.contains("web-1"), "{known}");

    // Again by Name: the recorded key answers, the console is not read.
    let consoles = |f: &Fixture| {
        f.sim
            .request_log()
            .iter()
            .filter(|e| e.op == "GetConsoleOutput")
            .count()
    };
    let before = consoles(&f);
    let out = ssh(&f, &config, "web-1").await;
    assert_eq!(
        out.stdout,
        b"verified\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(consoles(&f), before);

    // By ID, on a fresh known_hosts: verified the same way.
    std::fs::remove_file(f.known_hosts()).unwrap();
    let out = ssh(&f, &config, INSTANCE).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.stdout, b"verified\n", "{stderr}");
    assert!(
        stderr.contains("verified against the instance's console"),
        "{stderr}"
    );
    assert!(recorded(&f).starts_with(INSTANCE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_ssh_never_accepts_a_key_nothing_vouches_for() {
    let f = Fixture::new().await;
    let config = written_config(&f).await;

    // The console lists another key: refused before authentication.
    let stranger = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl root@elsewhere".to_owned();
    set_console(&f, Some(console_listing(&[stranger])));
    for host in ["web-1", INSTANCE] {
        let out = ssh(&f, &config, host).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{host}: {stderr}");
        assert!(out.stdout.is_empty(), "{host}: {stderr}");
        assert!(stderr.contains("POSSIBLE INTERCEPTION"), "{host}: {stderr}");
        assert!(recorded(&f).is_empty(), "{}", recorded(&f));
    }

    // The console shows no keys: nothing is printed, so ssh's own policy
    // decides, and BatchMode refuses an unknown key.
    set_console(&f, Some("[    0.000000] Linux version 6.1.0\r\n".into()));
    let out = ssh(&f, &config, "web-1").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("could not verify the host key"), "{stderr}");
    assert!(stderr.contains("Host key verification failed"), "{stderr}");
    assert!(recorded(&f).is_empty(), "{}", recorded(&f));
    assert!(
        !f.sshd.log().contains("Accepted publickey"),
        "{}",
        f.sshd.log()
    );

    // A changed key fails, even though the console lists the new one, and
    // the hint names the entry under the ID.
    set_console(&f, Some(console_listing(&f.sshd.host_key_pubs)));
    let old = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    std::fs::write(f.known_hosts(), format!("{INSTANCE} {old}\n")).unwrap();
    for host in ["web-1", INSTANCE] {
        let out = ssh(&f, &config, host).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{host}: {stderr}");
        assert!(out.stdout.is_empty(), "{host}: {stderr}");
        assert!(
            stderr.contains("IDENTIFICATION HAS CHANGED"),
            "{host}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("ssh-keygen -R {INSTANCE}")),
            "{host}: {stderr}"
        );
        assert_eq!(recorded(&f), format!("{INSTANCE} {old}\n"));
    }
}

/// scp and rsync go through the same block, so they verify a first contact
/// by Name the same way, on a fresh known_hosts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_and_rsync_verify_a_first_contact_by_name() {
    let f = Fixture::new().await;
    let config = written_config(&f).await;
    set_console(&f, Some(console_listing(&f.sshd.host_key_pubs)));
    let work = f.home.tmp().join("copies");
    std::fs::create_dir_all(&work).unwrap();
    let src = work.join("source.txt");
    std::fs::write(&src, b"through plain scp\n").unwrap();
    let ssh = format!("ssh -F {} -o BatchMode=yes", config.display());
    for (tool, dest) in [("scp", "by-scp.txt"), ("rsync", "by-rsync.txt")] {
        let _ = std::fs::remove_file(f.known_hosts());
        let remote = format!("web-1:{}", src.display());
        let dest = work.join(dest);
        let mut cmd = f.program(tool);
        match tool {
            "scp" => cmd.arg("-F").arg(&config).args(["-o", "BatchMode=yes"]),
            _ => cmd.args(["-e", &ssh]),
        };
        cmd.arg(&remote)
            .arg(&dest)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .expect("finished within 60 s")
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{tool}: {stderr}");
        assert_eq!(
            std::fs::read(&dest).unwrap(),
            b"through plain scp\n",
            "{tool}"
        );
        assert!(
            stderr.contains("verified against the instance's console output"),
            "{tool}: {stderr}"
        );
        assert!(recorded(&f).starts_with(INSTANCE), "{tool}");
    }
}
