//! Pushing a public key with EC2 Instance Connect `SendSSHPublicKey`; the
//! instance accepts it for 60 seconds.

use aws_sdk_ec2instanceconnect::error::ProvideErrorMetadata;
use zeroize::Zeroizing;

use crate::error::{Error, PublicKeyProblem};

/// The type of an ephemeral key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyType {
    /// Ed25519: small and fast; refused by sshd on FIPS-mode images.
    Ed25519,
    /// ECDSA on NIST P-256: accepted wherever pushed keys are.
    Ecdsa,
    /// RSA, 3072 bits (slow to make).
    Rsa,
}

impl KeyType {
    /// `ed25519`, `ecdsa` or `rsa`, as `--key-type` and the cache spell it.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::Ecdsa => "ecdsa",
            KeyType::Rsa => "rsa",
        }
    }

    /// The inverse of [`KeyType::name`].
    pub fn from_name(name: &str) -> Option<KeyType> {
        [KeyType::Ed25519, KeyType::Ecdsa, KeyType::Rsa]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

/// An ephemeral key, made in memory and never written anywhere.
pub struct EphemeralKey {
    pub private: russh::keys::PrivateKey,
    /// The public half in OpenSSH format, as pushed to the instance.
    pub public_openssh: String,
}

impl EphemeralKey {
    /// An ed25519 key.
    pub fn generate() -> Result<EphemeralKey, Error> {
        EphemeralKey::generate_type(KeyType::Ed25519)
    }

    /// A key of type `key_type`.
    pub fn generate_type(key_type: KeyType) -> Result<EphemeralKey, Error> {
        use russh::keys::ssh_key::{EcdsaCurve, private};
        keep_out_of_core_dumps();
        let mut private = match key_type {
            KeyType::Ed25519 => {
                let seed = Zeroizing::new(rand::random::<[u8; 32]>());
                russh::keys::PrivateKey::from(private::Ed25519Keypair::from_seed(&seed))
            }
            KeyType::Ecdsa => russh::keys::PrivateKey::from(private::EcdsaKeypair::random(
                &mut rand::rng(),
                EcdsaCurve::NistP256,
            )?),
            KeyType::Rsa => {
                russh::keys::PrivateKey::from(private::RsaKeypair::random(&mut rand::rng(), 3072)?)
            }
        };
        private.set_comment("eic-ssh ephemeral key");
        let public_openssh = private.public_key().to_openssh()?;
        Ok(EphemeralKey {
            private,
            public_openssh,
        })
    }
}

/// Keep this process's memory, about to hold a private key, out of core
/// dumps: no core file (RLIMIT_CORE 0, which systemd-coredump honours too)
/// and, on Linux, not dumpable at all, which also keeps other processes of
/// the same user from reading it through ptrace, as ssh-agent does. Best
/// effort, once per process.
fn keep_out_of_core_dumps() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Core);
        let no_core = Rlimit {
            current: Some(0),
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Core, no_core) {
            tracing::debug!("could not turn core dumps off: {e}");
        }
        #[cfg(target_os = "linux")]
        if let Err(e) =
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        {
            tracing::debug!("could not make the process undumpable: {e}");
        }
    });
}

impl std::fmt::Debug for EphemeralKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EphemeralKey")
            .field("public", &self.public_openssh)
            .finish_non_exhaustive()
    }
}

/// `SendSSHPublicKey` for one OS user. Service errors keep their code and
/// message, and `Error::hint` turns the code into advice.
pub async fn send_public_key(
    eic: &aws_sdk_ec2instanceconnect::Client,
    instance_id: &str,
    os_user: &str,
    public_key: &str,
) -> Result<(), Error> {
    tracing::debug!(instance_id, os_user, "SendSSHPublicKey");
    let out = eic
        .send_ssh_public_key()
        .instance_id(instance_id)
        .instance_os_user(os_user)
        .ssh_public_key(public_key)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(se) => Error::KeyPush {
                instance: instance_id.to_owned(),
                code: crate::text::remote_text(se.code().unwrap_or("Unknown")),
                message: crate::text::remote_text(
                    &se.message()
                        .map(str::to_owned)
                        .unwrap_or_else(|| se.to_string()),
                ),
            },
            None => crate::aws::errors::api_error("SendSSHPublicKey", e),
        })?;
    if !out.success() {
        return Err(Error::KeyPush {
            instance: instance_id.to_owned(),
            code: "NotSuccessful".into(),
            message: format!(
                "the service answered Success=false (request {})",
                out.request_id().unwrap_or("?")
            ),
        });
    }
    tracing::debug!(request_id = out.request_id(), "key pushed");
    Ok(())
}

/// The user's own public key, for OpenSSH to authenticate with: `file` if
/// given, else the first key ssh-agent offers, else the first of
/// `~/.ssh/id_ed25519.pub`, `id_ecdsa.pub`, `id_rsa.pub`.
pub async fn user_public_key(file: Option<&std::path::Path>) -> Result<String, Error> {
    if let Some(path) = file {
        return read_public_key(path);
    }
    let mut looked = Vec::new();
    match std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) {
        Some(sock) => match agent_first_key().await {
            Ok(Some(key)) => return Ok(key),
            Ok(None) => looked.push(format!("ssh-agent at {} (no keys)", sock.to_string_lossy())),
            Err(e) => looked.push(format!("ssh-agent at {} ({e})", sock.to_string_lossy())),
        },
        None => looked.push("ssh-agent (SSH_AUTH_SOCK is not set)".into()),
    }
    let ssh_dir = std::env::home_dir().unwrap_or_default().join(".ssh");
    for name in ["id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"] {
        let path = ssh_dir.join(name);
        if path.exists() {
            return read_public_key(&path);
        }
        looked.push(path.display().to_string());
    }
    Err(Error::NoPublicKey {
        looked: looked.join(", "),
    })
}

async fn agent_first_key() -> Result<Option<String>, String> {
    let mut agent = russh::keys::agent::client::AgentClient::connect_env()
        .await
        .map_err(|e| e.to_string())?;
    let ids = agent
        .request_identities()
        .await
        .map_err(|e| e.to_string())?;
    for id in ids {
        if let russh::keys::agent::AgentIdentity::PublicKey { key, .. } = id {
            return key.to_openssh().map(Some).map_err(|e| e.to_string());
        }
    }
    Ok(None)
}

fn read_public_key(path: &std::path::Path) -> Result<String, Error> {
    let bad = |source: PublicKeyProblem| Error::BadPublicKey {
        path: path.to_owned(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.into()))?;
    let key = russh::keys::ssh_key::PublicKey::from_openssh(text.trim())
        .map_err(|e| bad(PublicKeyProblem::NotOpenSsh(e)))?;
    key.to_openssh()
        .map_err(|e| bad(PublicKeyProblem::Encode(e)))
}
