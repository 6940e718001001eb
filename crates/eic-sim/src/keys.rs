//! The store of pushed SSH public keys, and the `AuthorizedKeysCommand`
//! script that lets a real sshd read it.
//!
//! EC2 Instance Connect puts each pushed key in the instance metadata for a
//! short time, and the instance's sshd fetches it through an
//! `AuthorizedKeysCommand`. The simulator mirrors that with a flat file
//! (`keys.db`, rewritten atomically on every push) and a small shell script
//! that prints the unexpired keys for one instance and user.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::lock;

#[derive(Clone, Debug)]
struct Entry {
    expires: SystemTime,
    instance_id: String,
    user: String,
    key: String,
}

/// Pushed keys with their expiry, mirrored to `keys.db`.
#[derive(Debug)]
pub(crate) struct KeyStore {
    dir: PathBuf,
    db: PathBuf,
    script: PathBuf,
    entries: Mutex<Vec<Entry>>,
}

impl KeyStore {
    /// Creates an empty store and its script in `dir`.
    pub(crate) fn create(dir: &Path) -> io::Result<KeyStore> {
        let store = KeyStore {
            dir: dir.to_path_buf(),
            db: dir.join("keys.db"),
            script: dir.join("authorized-keys-command"),
            entries: Mutex::new(Vec::new()),
        };
        store.write_db(&[])?;
        store.write_script()?;
        Ok(store)
    }

    /// The `AuthorizedKeysCommand` script.
    pub(crate) fn script(&self) -> &Path {
        &self.script
    }

    /// Records a key for `lifetime` and rewrites `keys.db`.
    pub(crate) fn push(
        &self,
        instance_id: &str,
        user: &str,
        key: &str,
        lifetime: Duration,
    ) -> io::Result<()> {
        let now = SystemTime::now();
        // The file is written under the lock too: with concurrent pushes
        // (`eic-ssh exec`), a writer holding an older snapshot must not
        // rename it over a newer one and lose a key.
        let mut entries = lock(&self.entries);
        entries.retain(|e| e.expires > now);
        // Pushing the same key again only extends it.
        entries.retain(|e| !(e.instance_id == instance_id && e.user == user && e.key == key));
        entries.push(Entry {
            expires: now + lifetime,
            instance_id: instance_id.to_string(),
            user: user.to_string(),
            key: key.to_string(),
        });
        self.write_db(&entries)
    }

    /// The unexpired keys for one instance and user, oldest first.
    pub(crate) fn keys(&self, instance_id: &str, user: &str) -> Vec<String> {
        let now = SystemTime::now();
        lock(&self.entries)
            .iter()
            .filter(|e| e.expires > now && e.instance_id == instance_id && e.user == user)
            .map(|e| e.key.clone())
            .collect()
    }

    fn write_db(&self, entries: &[Entry]) -> io::Result<()> {
        let mut text = String::new();
        for e in entries {
            // Round the expiry up: the script compares whole seconds, and
            // rounding down would expire a key up to a second early.
            let since = e.expires.duration_since(UNIX_EPOCH).unwrap_or_default();
            let secs = since.as_secs() + u64::from(since.subsec_nanos() > 0);
            text.push_str(&format!("{secs} {} {} {}\n", e.instance_id, e.user, e.key));
        }
        // Write a temporary file next to the database and rename it over, so
        // sshd never reads a half-written file.
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        // (No fsync: the rename alone makes readers see the old file or
        // the new one, and the database need not survive a crash. Under a
        // fleet's concurrent pushes, fsyncs in series would add up.)
        tmp.write_all(text.as_bytes())?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
        tmp.persist(&self.db).map_err(|e| e.error)?;
        Ok(())
    }

    fn write_script(&self) -> io::Result<()> {
        let script = format!(
            "#!/bin/sh\n\
             # Written by the eic-ssh simulator. Usage: {{script}} <instance-id> <user>\n\
             # Prints the unexpired public keys pushed for that instance and user,\n\
             # as EC2 Instance Connect's AuthorizedKeysCommand does.\n\
             now=$(date +%s)\n\
             exec awk -v now=\"$now\" -v inst=\"$1\" -v user=\"$2\" '\n\
             $1 > now && $2 == inst && $3 == user {{\n\
             \x20 line = $0\n\
             \x20 for (i = 0; i < 3; i++) sub(/^[^ ]+ /, \"\", line)\n\
             \x20 print line\n\
             }}' {}\n",
            shell_quote(&self.db.to_string_lossy())
        );
        let tmp = self.dir.join(".authorized-keys-command.tmp");
        std::fs::write(&tmp, script)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, &self.script)
    }
}

/// Quotes a string for a POSIX shell.
pub(crate) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_prints_only_unexpired_matching_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::create(dir.path()).unwrap();
        store
            .push("i-1", "ec2-user", "ssh-ed25519 AAAAgone", Duration::ZERO)
            .unwrap();
        store
            .push(
                "i-1",
                "ec2-user",
                "ssh-ed25519 AAAAone c o m",
                Duration::from_secs(60),
            )
            .unwrap();
        store
            .push(
                "i-1",
                "root",
                "ssh-ed25519 AAAAtwo",
                Duration::from_secs(60),
            )
            .unwrap();
        store
            .push(
                "i-2",
                "ec2-user",
                "ssh-ed25519 AAAAthree",
                Duration::from_secs(60),
            )
            .unwrap();
        assert_eq!(
            store.keys("i-1", "ec2-user"),
            vec!["ssh-ed25519 AAAAone c o m"]
        );

        // The script must apply the expiry itself, whatever the file holds.
        let db = dir.path().join("keys.db");
        let mut text = std::fs::read_to_string(&db).unwrap();
        text.push_str("1000 i-1 ec2-user ssh-ed25519 AAAAold\n");
        std::fs::write(&db, text).unwrap();

        let out = std::process::Command::new(store.script())
            .args(["i-1", "ec2-user"])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "ssh-ed25519 AAAAone c o m\n"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a'b"), "'a'\\''b'");
    }
}
