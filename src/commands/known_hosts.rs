//! `eic-ssh known-hosts`: OpenSSH's `KnownHostsCommand`, as `ssh-config`
//! writes it, so that `ssh web-1` through `eic-ssh proxy` verifies the host
//! as eic-ssh does (see `ssh::openssh_trust`).

use base64::Engine;
use russh::keys::PublicKey;

use crate::cli::KnownHostsArgs;
use crate::error::Error;
use crate::ssh::openssh_trust::{self, Question};

/// Print the known_hosts lines ssh may accept. An instance ID needs no AWS
/// call while its key is recorded; a Name (or IP, tag) is looked up as the
/// proxy looked it up, once the server has offered a key.
pub async fn run(args: KnownHostsArgs, quiet: bool) -> Result<u8, Error> {
    let name = args.name.clone().unwrap_or_else(|| args.target.to_string());
    openssh_trust::check_name(&name)?;
    let offered = match args.key.as_deref() {
        None | Some("NONE") => None,
        Some(text) => Some(parse_key(text)?),
    };
    let file = args
        .known_hosts
        .clone()
        .unwrap_or_else(crate::ssh::known_hosts::default_path);
    let load = || crate::aws::Aws::load(args.aws.region.as_deref(), args.aws.profile.as_deref());
    let (instance_id, aws) = match (args.target.instance_id(), &offered) {
        (Some(id), _) => (id.to_owned(), None),
        // Before the key exchange ssh only asks which key types to prefer:
        // not worth a lookup; the offered key is checked in full.
        (None, None) => return Ok(0),
        (None, Some(_)) => {
            let aws = load().await?;
            let chosen = crate::target::choose::choose(&aws, &args.target, true, false).await?;
            (chosen.instance_id, Some(aws))
        }
    };
    let question = Question {
        name: &name,
        instance_id: &instance_id,
        known_hosts: &file,
        offered: offered.as_ref(),
    };
    // Asked only for a key nothing records yet.
    let console = async {
        let aws = match aws {
            Some(aws) => aws,
            None => load().await.map_err(|e| e.to_string())?,
        };
        crate::ssh::console_keys::fetch(aws.ec2(), &instance_id)
            .await
            .map_err(|e| e.to_string())
    };
    let lines = openssh_trust::answer(&question, console, !quiet).await?;
    crate::term::out(&lines)?;
    Ok(0)
}

/// ssh's `%K`: the key's wire encoding in base64.
fn parse_key(text: &str) -> Result<PublicKey, Error> {
    let bad = |why: String| {
        Error::Usage(format!(
            "--key {:?} is not a public key in base64: {why}",
            crate::text::printable(text)
        ))
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| bad(e.to_string()))?;
    PublicKey::from_bytes(&bytes).map_err(|e| bad(e.to_string()))
}
