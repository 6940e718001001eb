//! `eic-ssh completions SHELL`: the script that hooks the shell into
//! clap_complete's dynamic engine. At each Tab the shell runs
//! `COMPLETE=<shell> eic-ssh -- <words>`, which answers from the command-line
//! definitions (subcommands, flags, fixed values, files) and, for instance
//! positions, from the lookup cache: instant, offline, no AWS call.

use std::io::Write;

use clap_complete::env::Shells;

use crate::cli::CompletionShell;
use crate::error::Error;

/// The environment variable the shell sets to ask for completions.
pub const VAR: &str = "COMPLETE";

/// Print the registration script for `shell`.
pub fn run(shell: CompletionShell) -> Result<u8, Error> {
    let mut out = Vec::new();
    script(shell, &mut out)?;
    crate::term::out(&String::from_utf8_lossy(&out))?;
    Ok(0)
}

/// Write the registration script for `shell` to `out`.
pub fn script(shell: CompletionShell, out: &mut dyn Write) -> Result<(), Error> {
    let name = match shell {
        CompletionShell::Bash => "bash",
        CompletionShell::Zsh => "zsh",
        CompletionShell::Fish => "fish",
        CompletionShell::Elvish => "elvish",
        CompletionShell::Powershell => "powershell",
    };
    let shells = Shells::builtins();
    let completer = shells
        .completer(name)
        .ok_or_else(|| Error::Internal(format!("no completion support for {name}")))?;
    completer.write_registration(VAR, "eic-ssh", "eic-ssh", "eic-ssh", out)?;
    Ok(())
}
