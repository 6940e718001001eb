//! `eic-ssh host-keys`.

use russh::keys::PublicKey;

use crate::connect::context::Context;
use crate::error::Error;
use crate::ssh::known_hosts;

/// `eic-ssh host-keys`: print the console's host keys as known_hosts lines
/// keyed by instance ID; with `--add`, append those not already there.
pub async fn run(args: crate::cli::HostKeysArgs, no_pick: bool, quiet: bool) -> Result<u8, Error> {
    let Context { aws, .. } = Context::load(&args.aws.settings()).await?;
    let chosen = crate::target::choose::choose(&aws, &args.target, no_pick, false).await?;
    let host = &chosen.instance_id;
    let found = crate::ssh::console_keys::fetch(aws.ec2(), host).await?;
    if found.keys.is_empty() {
        let detail = if found.fingerprints.is_empty() {
            "no host keys".to_owned()
        } else {
            format!("only fingerprints ({})", found.fingerprints.join(", "))
        };
        return Err(Error::ConsoleNoKeys {
            host: host.clone(),
            detail,
        });
    }
    let file = args
        .known_hosts
        .clone()
        .unwrap_or_else(known_hosts::default_path);
    // A key already recorded for the host that the console does not show is
    // what a connection would refuse as changed: adding the console's keys
    // beside it would make the next connection accept them silently.
    if args.add {
        for (line, known) in known_hosts::recorded(&file, host)? {
            if !found.keys.iter().any(|k| k.key_data() == known.key_data()) {
                return Err(Error::HostKeyNotOnConsole {
                    host: host.clone(),
                    file,
                    line,
                    known: describe(&known),
                    console: found
                        .keys
                        .iter()
                        .map(describe)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
    }
    let mut added = 0;
    for key in &found.keys {
        let line = key.to_openssh()?;
        let line: Vec<&str> = line.split_whitespace().take(2).collect();
        crate::term::out(&format!(
            "# {} {}\n{host} {}\n",
            key.algorithm(),
            known_hosts::fingerprint(key),
            line.join(" ")
        ))?;
        if args.add && known_hosts::check(&file, host, key)? != known_hosts::HostKeyStatus::Known {
            known_hosts::learn(&file, host, key)?;
            added += 1;
        }
    }
    if args.add && !quiet {
        eprintln!(
            "eic-ssh: added {added} host key(s) for {host} to {}",
            file.display()
        );
    }
    Ok(0)
}

fn describe(key: &PublicKey) -> String {
    format!("{} {}", key.algorithm(), known_hosts::fingerprint(key))
}
