//! Help that teaches: `-h` fits one screen, `--help` and the man page have
//! examples, the man pages render without a warning and name no page that
//! is not installed, and the usage lines read as they mean.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::stdout_of;

const BIN: &str = env!("CARGO_BIN_EXE_eic-ssh");

/// `eic-ssh args…` with only HOME and PATH: no AWS at all. Its stdout.
fn eic_ssh(home: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(args);
    String::from_utf8(stdout_of(cmd, &format!("{args:?}"))).unwrap()
}

/// A page rendered by `man --warnings` at 80 columns, and what groff said
/// with every warning on: both must be silent.
fn render(page: &Path) -> String {
    let out = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(page)
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && warnings.is_empty(),
        "{}: {warnings}",
        page.display()
    );
    let groff = Command::new("groff")
        .args(["-ww", "-man", "-Tutf8", "-z"])
        .arg(page)
        .output()
        .unwrap();
    let warnings = String::from_utf8_lossy(&groff.stderr);
    assert!(
        warnings.is_empty(),
        "groff on {}: {warnings}",
        page.display()
    );
    // man marks bold and underline with backspaces when not on a terminal.
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

#[test]
fn short_help_fits_one_screen_and_points_further() {
    let home = tempfile::tempdir().unwrap();
    let short = eic_ssh(home.path(), &["-h"]);
    let lines: Vec<&str> = short.lines().collect();
    assert!(lines.len() <= 40, "{} lines:\n{short}", lines.len());
    for line in &lines {
        assert!(
            line.chars().count() <= 80,
            "wider than 80 columns: {line:?}"
        );
    }
    // The common options are there; the rest is in --help.
    for flag in [
        "--user",
        "--region",
        "--profile",
        "-L <",
        "-N ",
        "-v, --verbose",
    ] {
        assert!(short.contains(flag), "{flag}: {short}");
    }
    assert!(!short.contains("--keepalive-interval"), "{short}");
    assert!(short.contains("eic-ssh --help"), "{short}");
    // One line per command: completions' install lines are its own help's.
    let commands: Vec<&str> = lines
        .iter()
        .skip_while(|l| **l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .copied()
        .collect();
    assert!(
        commands
            .iter()
            .all(|l| l.starts_with("  ") && !l.starts_with("   ")),
        "{commands:?}"
    );
    assert!(
        commands
            .iter()
            .any(|l| l.trim_start().starts_with("completions "))
    );
    let completions = eic_ssh(home.path(), &["completions", "--help"]);
    assert!(
        completions.contains("eic-ssh completions zsh >"),
        "{completions}"
    );

    // -h of a subcommand is short too.
    for sub in ["cp", "exec", "doctor", "restrict"] {
        let text = eic_ssh(home.path(), &[sub, "-h"]);
        assert!(text.lines().count() <= 40, "{sub}:\n{text}");
    }
}

#[test]
fn long_help_and_the_man_page_have_examples() {
    let home = tempfile::tempdir().unwrap();
    let long = eic_ssh(home.path(), &["--help"]);
    let examples = long
        .split("Examples:")
        .nth(1)
        .unwrap_or_else(|| panic!("{long}"));
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("eic-ssh.1");
    std::fs::write(&page, eic_ssh(home.path(), &["man"])).unwrap();
    let rendered = render(&page);
    // A section: the lines after its heading, up to the next heading.
    let section = |name: &str| {
        let mut lines = rendered.lines().skip_while(|l| *l != name);
        assert!(lines.next().is_some(), "no {name}:\n{rendered}");
        lines
            .take_while(|l| l.is_empty() || l.starts_with(' '))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let man_examples = section("EXAMPLES");
    for use_case in [
        "eic-ssh web-1",
        "eic-ssh exec ",
        "eic-ssh cp ",
        " -L 5432:",
        "eic-ssh ssh-config ",
        "eic-ssh doctor ",
        "eic-ssh restrict ",
    ] {
        assert!(
            examples.contains(use_case),
            "--help lacks {use_case:?}: {examples}"
        );
        assert!(
            man_examples.contains(use_case),
            "man lacks {use_case:?}: {man_examples}"
        );
    }
    for name in ["ENVIRONMENT", "FILES", "EXIT STATUS"] {
        section(name);
    }
    assert!(section("ENVIRONMENT").contains("AWS_PROFILE"));
    // Every EIC_SSH_ variable the client reads is described.
    let environment = section("ENVIRONMENT");
    let read = eic_ssh_variables(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(read.len() >= 5, "{read:?}");
    // Not the user's: -f's parent and child talk through the first, and
    // the build stamps the second.
    let internal = ["EIC_SSH_BACKGROUND_READY", "EIC_SSH_GIT_COMMIT"];
    for var in read.iter().filter(|v| !internal.contains(&v.as_str())) {
        assert!(
            environment.contains(var.as_str()),
            "man lacks {var}:\n{environment}"
        );
    }
    assert!(section("FILES").contains("connections.jsonl"));
    assert!(section("FILES").contains("~/.ssh/known_hosts"));
    assert!(section("EXIT STATUS").contains("255"));
    // Every option is described, those that -h leaves out too.
    // In the source, each option's entry is `.TP`, its tag line, then
    // text (an entry without text is followed by the next `.TP`).
    let source = std::fs::read_to_string(&page).unwrap();
    let options: Vec<&str> = source
        .lines()
        .skip_while(|l| *l != ".SH OPTIONS")
        .skip(1)
        .take_while(|l| !l.starts_with(".SH"))
        .collect();
    assert!(options.len() > 40, "{source}");
    for (i, line) in options.iter().enumerate() {
        if *line == ".TP" {
            let text = options.get(i + 2).copied().unwrap_or(".");
            assert!(
                !text.starts_with('.'),
                "{} has no description",
                options[i + 1]
            );
        }
    }
    assert!(section("OPTIONS").contains("Use this EC2 Instance Connect Endpoint"));
    // The synopsis gives each option its value.
    let synopsis = section("SYNOPSIS")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for option in [
        "[-L [BIND:]PORT:HOST:HOSTPORT]...",
        "[-l USER]",
        "[--region REGION]",
        "[-N]",
    ] {
        assert!(synopsis.contains(option), "{option}: {synopsis}");
    }
}

/// Every page `man --dir` installs renders without a warning, and every
/// page one names is installed (no eic-ssh-help(1)).
#[test]
fn installed_man_pages_render_and_name_only_installed_pages() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("share/man/man1");
    let out = Command::new(BIN)
        .env_clear()
        .env("HOME", home.path())
        .args(["man", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut installed: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    installed.sort();
    for page in [
        "eic-ssh.1",
        "eic-ssh-cp.1",
        "eic-ssh-doctor.1",
        "eic-ssh-ssh-config.1",
    ] {
        assert!(installed.iter().any(|p| p == page), "{page}: {installed:?}");
    }
    assert!(
        !installed.iter().any(|p| p == "eic-ssh-help.1"),
        "{installed:?}"
    );
    for page in &installed {
        let text = render(&dir.join(page));
        for other in pages_named(&text) {
            assert!(
                installed.contains(&format!("{other}.1")),
                "{page} names {other}(1), which is not installed"
            );
        }
    }
    let cp = render(&dir.join("eic-ssh-cp.1"));
    assert!(
        cp.contains("EXAMPLES") && cp.contains("eic-ssh cp ./app.tar.gz"),
        "{cp}"
    );
}

/// The `eic-ssh…(1)` pages a rendered page names.
fn pages_named(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("eic-ssh") {
        let rest = &text[i..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if rest[name.len()..].starts_with("(1)") {
            out.push(name);
        }
    }
    out
}

#[test]
fn usage_lines_read_as_they_mean() {
    let home = tempfile::tempdir().unwrap();
    let cp = eic_ssh(home.path(), &["cp", "--help"]);
    assert!(
        cp.contains("Usage: eic-ssh cp [OPTIONS] <SRC>... <DST>\n"),
        "{cp}"
    );
    let restrict = eic_ssh(home.path(), &["restrict", "--help"]);
    assert!(restrict.contains("<[USER@]TARGET>"), "{restrict}");
    assert!(!restrict.contains("INSTANCE-ID"), "{restrict}");
    // --no-pick and --color show only where they mean something.
    for (sub, no_pick, color) in [
        ("ls", false, true),
        ("exec", false, true),
        ("ssh-config", false, true),
        ("cache", false, false),
        ("completions", false, false),
        ("man", false, false),
        ("doctor", true, true),
        ("cp", true, true),
        ("host-keys", true, true),
    ] {
        let text = eic_ssh(home.path(), &[sub, "--help"]);
        assert_eq!(text.contains("--no-pick"), no_pick, "{sub}: {text}");
        assert_eq!(text.contains("--color"), color, "{sub}: {text}");
    }
    // Shown or not, they are still accepted everywhere.
    eic_ssh(
        home.path(),
        &["--color", "never", "--no-pick", "cache", "path"],
    );
}

/// The `EIC_SSH_` variable names written in the client's sources under
/// `dir`: the ones it reads.
fn eic_ssh_variables(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(eic_ssh_variables(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for (at, _) in text.match_indices("EIC_SSH_") {
                let name: String = text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if name.len() > "EIC_SSH_".len() {
                    found.insert(name);
                }
            }
        }
    }
    found
}
