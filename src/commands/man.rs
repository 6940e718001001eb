//! `eic-ssh man [SUBCOMMAND]` and `eic-ssh man --dir DIR`: the man pages in
//! roff, generated from the same clap definitions as `--help` (the options,
//! with clap_mangen) and the same texts (examples, environment, files, exit
//! status: `cli::help`), so the two never drift apart.

use std::io::Write;
use std::path::Path;

use clap::{Arg, ArgAction, Command};
use roff::{Roff, bold, italic, roman};

use crate::cli::help;
use crate::error::Error;

/// Print `eic-ssh`'s page or `eic-ssh-SUBCOMMAND`'s, or write every page
/// into `dir`.
pub fn run(subcommand: Option<&str>, dir: Option<&Path>, quiet: bool) -> Result<u8, Error> {
    if let Some(dir) = dir {
        let written = install(dir)?;
        if !quiet {
            eprintln!(
                "eic-ssh: wrote {} man pages to {} (eic-ssh.1 and eic-ssh-SUBCOMMAND.1)",
                written.len(),
                dir.display()
            );
        }
        return Ok(0);
    }
    let mut out = Vec::new();
    page(subcommand, &mut out)?;
    crate::term::out(&String::from_utf8_lossy(&out))?;
    Ok(0)
}

/// Write eic-ssh.1 and a page per subcommand into `dir`; the files written.
pub fn install(dir: &Path) -> Result<Vec<std::path::PathBuf>, Error> {
    let cannot = |what: &Path, e: std::io::Error| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("cannot write {}: {e}", what.display()),
        ))
    };
    std::fs::create_dir_all(dir).map_err(|e| cannot(dir, e))?;
    let mut names = vec![None];
    names.extend(subcommands(&crate::cli::command()).map(|s| Some(s.get_name().to_owned())));
    let mut written = Vec::new();
    for name in names {
        let file = dir.join(match &name {
            None => "eic-ssh.1".to_owned(),
            Some(n) => format!("eic-ssh-{n}.1"),
        });
        let mut text = Vec::new();
        page(name.as_deref(), &mut text)?;
        std::fs::write(&file, text).map_err(|e| cannot(&file, e))?;
        written.push(file);
    }
    Ok(written)
}

/// The subcommands that get a page: not `help`, not hidden ones.
fn subcommands(top: &Command) -> impl Iterator<Item = &Command> {
    top.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

/// Render the page into `out`.
pub fn page(subcommand: Option<&str>, out: &mut dyn Write) -> Result<(), Error> {
    let top = crate::cli::command();
    let text = match subcommand {
        None => main_page(&top),
        Some(name) => {
            let sub = subcommands(&top)
                .find(|s| s.get_name() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = subcommands(&top).map(|s| s.get_name()).collect();
                    Error::Usage(format!(
                        "'{name}' is not a subcommand of eic-ssh: use one of {}",
                        names.join(", ")
                    ))
                })?;
            sub_page(sub)
        }
    }?;
    out.write_all(ascii(&text).as_bytes())?;
    Ok(())
}

fn main_page(top: &Command) -> Result<String, Error> {
    let version = top.get_version().unwrap_or_default();
    let mut head = Roff::new();
    head.control(
        "TH",
        [
            "EIC-SSH",
            "1",
            "",
            &format!("eic-ssh {version}"),
            "User Commands",
        ],
    );
    head.control("SH", ["NAME"]);
    head.text([roman(format!(
        "eic-ssh - {}",
        top.get_about().map(|a| a.to_string()).unwrap_or_default()
    ))]);
    head.control("SH", ["SYNOPSIS"]);
    synopsis(&mut head, "eic-ssh", top);
    head.control("br", [] as [&str; 0]);
    head.text([
        bold("eic-ssh"),
        roman(" "),
        italic("COMMAND"),
        roman(" [OPTIONS] ..."),
    ]);
    description(&mut head, top);

    let mut tail = Roff::new();
    tail.control("SH", ["COMMANDS"]);
    for sub in subcommands(top) {
        tail.control("TP", [] as [&str; 0]);
        synopsis(&mut tail, &format!("eic-ssh {}", sub.get_name()), sub);
        tail.text([roman(about(sub))]);
    }
    tail.control("PP", [] as [&str; 0]);
    tail.text([
        roman("Each command's options: "),
        bold("eic-ssh help"),
        roman(" "),
        italic("COMMAND"),
        roman(", or the page "),
        bold("eic-ssh man --dir"),
        roman(" installs for it."),
    ]);
    examples(&mut tail, |_| true);
    table(&mut tail, "ENVIRONMENT", help::ENVIRONMENT);
    table(&mut tail, "FILES", help::FILES);
    table(&mut tail, "EXIT STATUS", help::EXIT_STATUS);
    tail.control("SH", ["SEE ALSO"]);
    tail.text([
        roman("ssh(1), scp(1), ssh_config(5), aws(1); "),
        roman("the documentation in the project's docs/ folder."),
    ]);
    Ok(format!("{}{}{}", head.render(), options(top)?, body(&tail)))
}

fn sub_page(sub: &Command) -> Result<String, Error> {
    let name = format!("eic-ssh {}", sub.get_name());
    let mut head = Roff::new();
    head.control(
        "TH",
        [
            &format!("EIC-SSH-{}", sub.get_name().to_uppercase()),
            "1",
            "",
            "eic-ssh",
            "User Commands",
        ],
    );
    head.control("SH", ["NAME"]);
    head.text([roman(format!(
        "eic-ssh-{} - {}",
        sub.get_name(),
        about(sub)
    ))]);
    head.control("SH", ["SYNOPSIS"]);
    synopsis(&mut head, &name, sub);
    for action in sub.get_subcommands().filter(|s| s.get_name() != "help") {
        head.control("br", [] as [&str; 0]);
        synopsis(&mut head, &format!("{name} {}", action.get_name()), action);
    }
    description(&mut head, sub);
    let mut tail = Roff::new();
    if sub.has_subcommands() {
        tail.control("SH", ["COMMANDS"]);
        for action in sub.get_subcommands().filter(|s| s.get_name() != "help") {
            tail.control("TP", [] as [&str; 0]);
            tail.text([bold(format!("{name} {}", action.get_name()))]);
            tail.text([roman(about(action))]);
        }
    }
    examples(&mut tail, |e| e.command.starts_with(&format!("{name} ")));
    tail.control("SH", ["SEE ALSO"]);
    tail.text([roman("eic-ssh(1), ssh(1)")]);
    Ok(format!("{}{}{}", head.render(), options(sub)?, body(&tail)))
}

/// The first line of a command's description.
fn about(cmd: &Command) -> String {
    cmd.get_about().map(|a| a.to_string()).unwrap_or_default()
}

/// DESCRIPTION: the long description, paragraph by paragraph.
fn description(roff: &mut Roff, cmd: &Command) {
    roff.control("SH", ["DESCRIPTION"]);
    let text = cmd
        .get_long_about()
        .or(cmd.get_about())
        .map(|a| a.to_string())
        .unwrap_or_default();
    for (i, para) in text.split("\n\n").enumerate() {
        if i > 0 {
            roff.control("PP", [] as [&str; 0]);
        }
        // Lines meant as lines (completions' install commands) stay so.
        for (j, line) in para.lines().enumerate() {
            if j > 0 {
                roff.control("br", [] as [&str; 0]);
            }
            roff.text([roman(line.trim_start())]);
        }
    }
}

/// SYNOPSIS: the command, then every shown option with its value (`[-L
/// [BIND:]PORT:HOST:HOSTPORT]...`), then the positionals.
fn synopsis(roff: &mut Roff, name: &str, cmd: &Command) {
    let mut line = vec![bold(name)];
    let shown = |a: &&Arg| !a.is_hide_set();
    for arg in cmd
        .get_arguments()
        .filter(|a| !a.is_positional())
        .filter(shown)
    {
        let (open, close) = match arg.is_required_set() {
            true => (" ", ""),
            false => (" [", "]"),
        };
        line.push(roman(open));
        line.push(bold(match (arg.get_short(), arg.get_long()) {
            (Some(c), _) => format!("-{c}"),
            (None, Some(l)) => format!("--{l}"),
            (None, None) => arg.get_id().to_string(),
        }));
        if arg.get_action().takes_values() {
            let value = arg
                .get_value_names()
                .map(|v| v.join(" "))
                .unwrap_or_else(|| arg.get_id().to_string().to_uppercase());
            line.push(roman(" "));
            line.push(italic(value));
        }
        line.push(roman(close));
        if matches!(arg.get_action(), ArgAction::Append | ArgAction::Count) {
            line.push(roman("..."));
        }
    }
    for arg in cmd.get_positionals().filter(shown) {
        let value = arg
            .get_value_names()
            .map(|v| v.join(" "))
            .unwrap_or_else(|| arg.get_id().to_string().to_uppercase());
        let many = matches!(arg.get_action(), ArgAction::Append)
            || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
        let (open, close) = match arg.is_required_set() {
            true => ("", ""),
            false => ("[", "]"),
        };
        // A command after the targets comes after `--`.
        let dashes = match arg.is_last_set() {
            true => " --",
            false => "",
        };
        line.push(roman(format!("{dashes} {open}")));
        line.push(italic(value));
        line.push(roman(format!("{close}{}", if many { "..." } else { "" })));
    }
    if cmd.has_subcommands() && cmd.get_positionals().next().is_none() {
        line.push(roman(" "));
        line.push(italic("COMMAND"));
    }
    roff.text(line);
}

/// OPTIONS, as clap_mangen writes it from the definitions.
fn options(cmd: &Command) -> Result<String, Error> {
    // An option left out of -h has its one-line help as its --help text;
    // clap_mangen reads it only as the long help, and would describe it
    // with nothing.
    let cmd = cmd.clone().mut_args(|arg| {
        match (
            arg.is_hide_short_help_set(),
            arg.get_long_help(),
            arg.get_help(),
        ) {
            (true, None, Some(help)) => {
                let help = help.clone();
                arg.long_help(help)
            }
            _ => arg,
        }
    });
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render_options_section(&mut out)?;
    Ok(strip_preamble(&String::from_utf8_lossy(&out)))
}

/// EXAMPLES: those `keep` keeps, each command in bold with its purpose.
fn examples(roff: &mut Roff, keep: impl Fn(&help::Example) -> bool) {
    let chosen: Vec<&help::Example> = help::EXAMPLES.iter().filter(|e| keep(e)).collect();
    if chosen.is_empty() {
        return;
    }
    roff.control("SH", ["EXAMPLES"]);
    for e in chosen {
        // The command as it is typed: one line, neither filled nor
        // hyphenated, so that it can be copied.
        roff.control("PP", [] as [&str; 0]);
        roff.control("nf", [] as [&str; 0]);
        roff.control("RS", ["4"]);
        roff.text([bold(e.command)]);
        roff.control("RE", [] as [&str; 0]);
        roff.control("fi", [] as [&str; 0]);
        roff.control("RS", ["8"]);
        roff.text([roman(e.what)]);
        roff.control("RE", [] as [&str; 0]);
    }
}

/// A section of `term: meaning` entries.
fn table(roff: &mut Roff, title: &str, rows: &[(&str, &str)]) {
    roff.control("SH", [title]);
    for (term, meaning) in rows {
        roff.control("TP", [] as [&str; 0]);
        roff.text([bold(*term)]);
        roff.text([roman(*meaning)]);
    }
}

/// A part of a page, without the apostrophe preamble every rendering starts
/// with (the page has it once, at its top).
fn body(roff: &Roff) -> String {
    strip_preamble(&roff.render())
}

fn strip_preamble(text: &str) -> String {
    text.strip_prefix(".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n")
        .unwrap_or(text)
        .to_owned()
}

/// Every character beyond ASCII as a roff escape (`\[u2192]`), so the page
/// reads the same whatever encoding groff assumes.
fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_ascii() {
            true => c.to_string(),
            false => format!("\\[u{:04X}]", u32::from(c)),
        })
        .collect()
}
