//! What the parsed command line means to the rooms below: the settings the
//! preamble loads, where to connect, how host keys are checked, the
//! forwards, the OS user and the remote command. The command layer asks
//! these; the domain never sees the clap structs.

use std::path::PathBuf;

use super::parse::{join_words, os_user, shell_word};
use super::{
    AwsArgs, Cli, ConnectArgs, ExecArgs, HostKeyArgs, SshArgs, Subcommand, UserArg, VerifyHostKey,
};
use crate::connect::context::Settings;
use crate::ssh::host_keys::HostKeyChecking;
use crate::target::syntax::Target;

impl ExecArgs {
    /// The remote command line, joined with spaces exactly as ssh does.
    pub fn remote_command(&self) -> Vec<u8> {
        join_words(&self.command)
    }
}

impl AwsArgs {
    /// What to load: this region and profile, the default timeouts, and no
    /// route cache.
    pub fn settings(&self) -> Settings {
        Settings {
            region: self.region.clone(),
            profile: self.profile.clone(),
            connect_timeout: None,
            cache: false,
        }
    }
}

impl UserArg {
    /// The OS user: `-l` wins over `user@`, and `ec2-user` is the default.
    pub fn resolve(&self, target: Option<&Target>) -> String {
        os_user(self.user.as_ref(), target)
    }
}

impl ConnectArgs {
    /// What to load: the region and profile, `--connect-timeout`, and the
    /// lookup cache unless `--no-cache`.
    pub fn settings(&self) -> Settings {
        Settings {
            connect_timeout: Some(std::time::Duration::from_secs(u64::from(
                self.connect_timeout,
            ))),
            cache: !self.no_cache,
            ..self.aws.settings()
        }
    }

    /// Where to connect, for `instance_id`.
    pub fn destination(&self, instance_id: &str) -> crate::target::Destination {
        crate::target::Destination {
            instance_id: instance_id.to_owned(),
            port: self.port,
            eice_id: self.eice_id.clone(),
            eice_dns: self.eice_dns.clone(),
            private_ip: self.private_ip,
            max_tunnel_duration: self.max_tunnel_duration,
            prefetched: None,
        }
    }
}

impl HostKeyArgs {
    /// The known_hosts file in use.
    pub fn file(&self) -> PathBuf {
        self.known_hosts
            .clone()
            .unwrap_or_else(crate::ssh::known_hosts::default_path)
    }

    /// How host keys are checked.
    pub fn checking(&self) -> HostKeyChecking {
        HostKeyChecking {
            known_hosts: self.file(),
            strict: self.strict_host_key_checking,
            console: self.verify_host_key == VerifyHostKey::Console,
        }
    }
}

impl Cli {
    /// The `eic-ssh doctor …` command line that would examine this
    /// invocation's instance, for hints after a failed connection.
    pub fn doctor_command(&self) -> Option<String> {
        let (target, connect) = match &self.subcommand {
            None => (self.ssh.target.as_ref()?, &self.ssh.connect),
            Some(Subcommand::Proxy(a)) => (&a.target, &a.connect),
            Some(Subcommand::Tunnel(a)) => (&a.target, &a.connect),
            Some(_) => return None,
        };
        let mut cmd = format!("eic-ssh doctor {}", shell_word(&target.expr.to_string()));
        if connect.port != 22 {
            cmd.push_str(&format!(" --port {}", connect.port));
        }
        if let Some(r) = &connect.aws.region {
            cmd.push_str(&format!(" --region {r}"));
        }
        if let Some(p) = &connect.aws.profile {
            cmd.push_str(&format!(" --profile {p}"));
        }
        Some(cmd)
    }
}

impl SshArgs {
    /// Whether to request a PTY: `-t` forces, `-T` forbids, and otherwise a
    /// shell (no command) on a terminal gets one, as in ssh.
    pub fn wants_pty(&self, stdin_is_terminal: bool) -> bool {
        if self.no_tty {
            false
        } else {
            self.force_tty || (self.command.is_empty() && stdin_is_terminal)
        }
    }

    /// The forwards asked for with -L, -R and -D.
    pub fn forwards(&self) -> crate::ssh::forward::ForwardSpecs {
        crate::ssh::forward::ForwardSpecs {
            local: self.local_forward.clone(),
            remote: self.remote_forward.clone(),
            dynamic: self.dynamic_forward.clone(),
            remote_best_effort: self.forward_best_effort,
        }
    }

    /// The OS user for the session.
    pub fn user(&self) -> String {
        self.user.resolve(self.target.as_ref())
    }

    /// The remote command line, joined with spaces exactly as ssh does.
    pub fn remote_command(&self) -> Option<Vec<u8>> {
        if self.command.is_empty() {
            return None;
        }
        Some(join_words(&self.command))
    }
}
