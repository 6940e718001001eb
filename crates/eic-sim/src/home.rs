//! A client's hermetic HOME: the one place the tests, the demo and the bench
//! get the directories and the environment of an eic-ssh process that sees
//! the simulator and nothing of the developer's own AWS or SSH set-up.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Simulator;
use crate::state::Shared;

/// A private HOME and TMPDIR for client processes, with empty AWS config
/// and credentials files in HOME, and the environment that points a client
/// at one simulator through standard settings only. Both directories are
/// removed on drop.
pub struct ClientHome {
    home: tempfile::TempDir,
    tmp: tempfile::TempDir,
    shared: Arc<Shared>,
}

impl Simulator {
    /// A fresh [`ClientHome`] for this simulator, under the system's
    /// temporary directory.
    pub fn client_home(&self) -> io::Result<ClientHome> {
        self.client_home_in(&std::env::temp_dir())
    }

    /// A fresh [`ClientHome`] for this simulator, under `base`.
    pub fn client_home_in(&self, base: &Path) -> io::Result<ClientHome> {
        let home = tempfile::Builder::new().tempdir_in(base)?;
        let tmp = tempfile::Builder::new().tempdir_in(base)?;
        let home = ClientHome {
            home,
            tmp,
            shared: self.shared().clone(),
        };
        // Empty, so that nothing from the developer's own files leaks in
        // (the SDK would read ~/.aws otherwise).
        std::fs::write(home.aws_config(), "")?;
        std::fs::write(home.aws_credentials(), "")?;
        Ok(home)
    }
}

impl ClientHome {
    /// `HOME`.
    pub fn path(&self) -> &Path {
        self.home.path()
    }

    /// `TMPDIR`, apart from `HOME`.
    pub fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    /// `AWS_CONFIG_FILE`: empty until a test writes a profile into it.
    pub fn aws_config(&self) -> PathBuf {
        self.path().join("aws-config")
    }

    /// `AWS_SHARED_CREDENTIALS_FILE`: empty (the credentials come from the
    /// environment).
    pub fn aws_credentials(&self) -> PathBuf {
        self.path().join("aws-credentials")
    }

    /// Where eic-ssh (and OpenSSH) keep host keys: `~/.ssh/known_hosts`,
    /// which does not exist until a first contact writes it.
    pub fn known_hosts(&self) -> PathBuf {
        self.path().join(".ssh").join("known_hosts")
    }

    /// The whole environment of a client process (for `env_clear().envs(…)`):
    /// `PATH`, `HOME`, `TMPDIR`, the AWS files above, and the simulator's
    /// settings: `AWS_ENDPOINT_URL_*`, `AWS_CA_BUNDLE`, long-term
    /// credentials, `AWS_REGION`, `AWS_EC2_METADATA_DISABLED` and
    /// `EIC_SSH_CONNECT_TO`. Read now, so a changed region shows.
    pub fn env(&self) -> Vec<(OsString, OsString)> {
        let mut env: Vec<(OsString, OsString)> = vec![
            ("PATH".into(), std::env::var_os("PATH").unwrap_or_default()),
            ("HOME".into(), self.path().into()),
            ("TMPDIR".into(), self.tmp().into()),
            ("AWS_CONFIG_FILE".into(), self.aws_config().into()),
            (
                "AWS_SHARED_CREDENTIALS_FILE".into(),
                self.aws_credentials().into(),
            ),
        ];
        env.extend(
            self.shared
                .aws_env()
                .into_iter()
                .map(|(k, v)| (k.into(), v.into())),
        );
        env
    }
}

#[cfg(test)]
mod tests {
    use crate::{CONNECT_TO_VAR, Simulator, World};

    #[tokio::test]
    async fn a_client_home_is_private_and_points_at_the_simulator() {
        let sim = Simulator::start(World::demo()).await.unwrap();
        let base = tempfile::tempdir().unwrap();
        let home = sim.client_home_in(base.path()).unwrap();
        assert!(home.path().starts_with(base.path()));
        assert_ne!(home.path(), home.tmp());
        for f in [home.aws_config(), home.aws_credentials()] {
            assert_eq!(std::fs::read(&f).unwrap(), b"", "{}", f.display());
        }
        assert!(!home.known_hosts().exists());

        let env = home.env();
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.to_string_lossy().into_owned())
                .unwrap_or_else(|| panic!("{k} is not set"))
        };
        assert_eq!(get("HOME"), home.path().to_string_lossy());
        assert_eq!(get("TMPDIR"), home.tmp().to_string_lossy());
        assert_eq!(get("AWS_CONFIG_FILE"), home.aws_config().to_string_lossy());
        assert_eq!(
            get("AWS_SHARED_CREDENTIALS_FILE"),
            home.aws_credentials().to_string_lossy()
        );
        assert_eq!(get("AWS_ENDPOINT_URL_EC2"), sim.api_url());
        assert_eq!(get("AWS_ENDPOINT_URL_EC2_INSTANCE_CONNECT"), sim.api_url());
        assert_eq!(get("AWS_CA_BUNDLE"), sim.ca_pem_path().to_string_lossy());
        assert_eq!(get("AWS_ACCESS_KEY_ID"), sim.credentials().access_key_id);
        assert_eq!(get("AWS_EC2_METADATA_DISABLED"), "true");
        assert_eq!(get(CONNECT_TO_VAR), sim.connect_to());
        assert_eq!(get("AWS_REGION"), "us-east-1");
        // Read when asked: a changed region shows.
        sim.set_world(|w| w.region = "eu-west-3".into());
        assert_eq!(
            home.env()
                .iter()
                .find(|(n, _)| n == "AWS_REGION")
                .map(|(_, v)| v.clone()),
            Some("eu-west-3".into())
        );

        let (h, t) = (home.path().to_owned(), home.tmp().to_owned());
        drop(home);
        assert!(!h.exists() && !t.exists());
    }
}
