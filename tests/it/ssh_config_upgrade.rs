//! `ssh-config --include` after an upgrade: the file an eic-ssh from before
//! the header line wrote is recognised as eic-ssh's own and rewritten; any
//! other content is still refused.

use std::path::Path;

/// The block as eic-ssh wrote it before the header line existed.
fn old_block(host: &str, user: &str, command: &str) -> String {
    format!(
        "# Reach EC2 instances by ID through EC2 Instance Connect Endpoints.
# eic-ssh pushes your public key (ssh-agent's first, or ~/.ssh/id_*.pub) for %r,
# then carries the SSH bytes; OpenSSH does the rest (scp, sftp, rsync, git too).
Host {host}
    User {user}
    ProxyCommand {command}
    # OpenSSH records host keys under the instance ID, as eic-ssh itself does.
    # The pushed key is valid for 60 s: authenticate promptly, and detect dead tunnels.
    ConnectTimeout 30
    ServerAliveInterval 30
    ServerAliveCountMax 4
"
    )
}

/// `eic-ssh ssh-config --include` with only HOME and PATH: no AWS at all.
fn include(home: &Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eic-ssh"))
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["ssh-config", "--include"])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_block_an_earlier_eic_ssh_wrote_is_rewritten() {
    let header = eic_ssh::commands::ssh_config::INCLUDE_HEADER;
    let old = [
        old_block(
            "i-*",
            "ec2-user",
            "/usr/local/bin/eic-ssh proxy --user '%r' '%h' '%p'",
        ),
        old_block(
            "i-* web-*",
            "ubuntu",
            "'/opt/my tools/eic-ssh' proxy --profile 'p q' --region eu-west-1 --user '%r' '%h' '%p'",
        ),
    ];
    for text in old {
        let home = tempfile::tempdir().unwrap();
        let file = home.path().join(".ssh/config.d/eic-ssh");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &text).unwrap();
        let (status, stderr) = include(home.path());
        assert_eq!(status, Some(0), "{text}\n{stderr}");
        let new = std::fs::read_to_string(&file).unwrap();
        assert!(new.starts_with(header), "{new}");
        assert!(new.contains("Host i-*\n"), "{new}");
    }

    // Anything else is the user's: an edited line, a line added or taken
    // away, the ProxyCommand of another program.
    let base = old_block(
        "i-*",
        "ec2-user",
        "/usr/bin/eic-ssh proxy --user '%r' '%h' '%p'",
    );
    let edited = [
        base.replace("ConnectTimeout 30", "ConnectTimeout 60"),
        format!("{base}    ForwardAgent yes\n"),
        base.replace("    ServerAliveCountMax 4\n", ""),
        base.replace("/usr/bin/eic-ssh proxy", "/usr/bin/nc -X connect"),
        base.replace("Host i-*", "Host i-* #x"),
        base.replace("User ec2-user", "User ec2-user extra"),
        base.trim_end().to_owned(),
        format!("# mine\n{base}"),
    ];
    for text in edited {
        let home = tempfile::tempdir().unwrap();
        let file = home.path().join(".ssh/config.d/eic-ssh");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &text).unwrap();
        let (status, stderr) = include(home.path());
        assert_eq!(status, Some(2), "{text}\n{stderr}");
        assert!(stderr.contains("eic-ssh did not write it"), "{stderr}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    }
}
