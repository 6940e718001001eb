//! `eic-ssh man [SUBCOMMAND]`: the man page in roff, generated from the same
//! clap definitions as `--help`, so the two never drift apart.

use std::io::Write;

use clap::CommandFactory;

use crate::error::Error;

/// Print `eic-ssh`'s page, or `eic-ssh-SUBCOMMAND`'s.
pub fn run(subcommand: Option<&str>) -> Result<u8, Error> {
    let mut out = Vec::new();
    page(subcommand, &mut out)?;
    crate::term::out(&String::from_utf8_lossy(&out))?;
    Ok(0)
}

/// Render the page into `out`.
pub fn page(subcommand: Option<&str>, out: &mut dyn Write) -> Result<(), Error> {
    let mut top = crate::cli::Cli::command();
    top.build();
    let cmd = match subcommand {
        None => top,
        Some(name) => {
            let sub = top.find_subcommand(name).cloned().ok_or_else(|| {
                let names: Vec<&str> = top.get_subcommands().map(|s| s.get_name()).collect();
                Error::Usage(format!(
                    "'{name}' is not a subcommand of eic-ssh: use one of {}",
                    names.join(", ")
                ))
            })?;
            let full = format!("eic-ssh-{}", sub.get_name());
            sub.name(full.clone()).bin_name(full)
        }
    };
    clap_mangen::Man::new(cmd).render(out)?;
    Ok(())
}
