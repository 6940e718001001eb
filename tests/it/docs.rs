//! The documentation's relative links resolve: every link in every markdown
//! file of the repository names a file that exists, and a `#anchor` names a
//! heading of its file, by GitHub's rules for heading anchors.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use regex::Regex;

#[test]
fn every_relative_link_in_the_markdown_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = markdown_files(root);
    assert!(
        files.iter().any(|f| f.ends_with("README.md")),
        "no README.md found under {}",
        root.display()
    );
    let broken = broken_links(root, &files);
    assert!(
        broken.is_empty(),
        "{} broken link(s) in the markdown:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn the_link_check_reports_missing_files_and_headings() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("docs")).unwrap();
    std::fs::write(
        root.join("README.md"),
        "# Title\n\n\
         [ok](docs/a.md) [ok](docs/a.md#the-cache-eic-ssh-cache) [ok](#title) [ok](docs/)\n\
         [ok](https://example.com/nowhere.md) [ok](mailto:me@example.com)\n\
         [gone](docs/missing.md) and [no such heading](docs/a.md#nowhere)\n\
         `[in code](nowhere.md)` and\n\
         ```sh\n[in a block](nowhere.md)\n```\n\
         [ref]: docs/also-missing.md\n",
    )
    .unwrap();
    std::fs::write(
        root.join("docs/a.md"),
        "# A\n\n## The cache: `eic-ssh cache`\n\n```sh\n# not a heading\n```\n\n\
         [up](../README.md#title) [self](#not-a-heading) [dup](#a-1)\n",
    )
    .unwrap();
    let files = markdown_files(root);
    assert_eq!(files.len(), 2, "{files:?}");
    let broken = broken_links(root, &files);
    assert_eq!(
        broken,
        [
            "README.md:5: docs/missing.md: no such file",
            "README.md:5: docs/a.md#nowhere: no heading with that anchor in docs/a.md",
            "README.md:10: docs/also-missing.md: no such file",
            "docs/a.md:9: #not-a-heading: no heading with that anchor in docs/a.md",
            "docs/a.md:9: #a-1: no heading with that anchor in docs/a.md",
        ],
        "{broken:#?}"
    );
}

#[test]
fn anchors_follow_githubs_rules() {
    let cases = [
        (
            "Naming instances: targets, the picker, `ls` and `exec`",
            "naming-instances-targets-the-picker-ls-and-exec",
        ),
        (
            "`eic-ssh proxy` — ProxyCommand mode",
            "eic-ssh-proxy--proxycommand-mode",
        ),
        (
            "`eic-ssh ls [TARGET…] [--json]`",
            "eic-ssh-ls-target---json",
        ),
        ("Host keys: the trust model", "host-keys-the-trust-model"),
        (
            "IPv6 and dual-stack endpoints",
            "ipv6-and-dual-stack-endpoints",
        ),
        ("The ssh_config block", "the-ssh_config-block"),
        ("[A link](x.md) and **bold**", "a-link-and-bold"),
    ];
    for (heading, anchor) in cases {
        assert_eq!(slug(heading), anchor, "heading {heading:?}");
    }
    let text = "# Usage\n## Errors\n## Errors\n```\n# code\n```\n# Errors ##\n";
    let anchors: Vec<String> = {
        let mut v: Vec<String> = anchors(text).into_iter().collect();
        v.sort();
        v
    };
    assert_eq!(anchors, ["errors", "errors-1", "errors-2", "usage"]);
}

/// The markdown files under `root`, leaving out build output and hidden
/// directories (`.git`), sorted.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    dirs.push(path);
                }
            } else if kind.is_file() && name.ends_with(".md") {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Each broken link as `FILE:LINE: DESTINATION: why`, in file order.
fn broken_links(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let inline = Regex::new(r#"\]\(\s*<?([^()<>\s]*)>?(?:\s+"[^"]*")?\s*\)"#).unwrap();
    let reference = Regex::new(r"^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?").unwrap();
    let scheme = Regex::new(r"^[A-Za-z][A-Za-z0-9+.-]*:").unwrap();
    let mut headings: HashMap<PathBuf, HashSet<String>> = HashMap::new();
    let mut broken = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for (n, line) in prose_lines(&text) {
            let line = strip_code_spans(&line);
            let dests = inline
                .captures_iter(&line)
                .chain(reference.captures_iter(&line))
                .map(|c| c[1].to_owned());
            for dest in dests {
                if dest.is_empty() || scheme.is_match(&dest) {
                    continue;
                }
                let (path, anchor) = match dest.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (dest.as_str(), None),
                };
                let path = path.replace("%20", " ");
                let target = if path.is_empty() {
                    file.clone()
                } else if let Some(from_root) = path.strip_prefix('/') {
                    normalize(Path::new(from_root))
                } else {
                    normalize(&file.parent().unwrap_or(Path::new("")).join(&path))
                };
                let at = format!("{}:{n}: {dest}", file.display());
                if !root.join(&target).exists() {
                    broken.push(format!("{at}: no such file"));
                    continue;
                }
                let Some(anchor) = anchor.filter(|_| target.extension() == Some("md".as_ref()))
                else {
                    continue;
                };
                let known = headings.entry(target.clone()).or_insert_with(|| {
                    anchors(&std::fs::read_to_string(root.join(&target)).unwrap_or_default())
                });
                if !known.contains(&anchor.to_lowercase()) {
                    broken.push(format!(
                        "{at}: no heading with that anchor in {}",
                        target.display()
                    ));
                }
            }
        }
    }
    broken
}

/// `a/./b/../c` as `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The lines outside fenced code blocks, numbered from 1.
fn prose_lines(text: &str) -> Vec<(usize, String)> {
    let mut fence: Option<String> = None;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker: String = trimmed
            .chars()
            .take_while(|&c| c == '`' || c == '~')
            .collect();
        match &fence {
            Some(open) if trimmed.starts_with(open.as_str()) => fence = None,
            Some(_) => {}
            None if marker.len() >= 3
                && (marker.chars().all(|c| c == '`') || marker.chars().all(|c| c == '~')) =>
            {
                fence = Some(marker);
            }
            None => out.push((i + 1, line.to_owned())),
        }
    }
    out
}

/// The line with its `code spans` emptied, so that a link shown as code is
/// not taken for one.
fn strip_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let after = &rest[start + ticks..];
        match after.find(&"`".repeat(ticks)) {
            Some(end) => {
                out.push_str(&rest[..start]);
                out.push_str("``");
                rest = &after[end + ticks..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// The anchors GitHub gives the headings of a markdown text: each heading's
/// slug, with `-1`, `-2`… added to repeats.
fn anchors(text: &str) -> HashSet<String> {
    let heading = Regex::new(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$").unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = HashSet::new();
    for (_, line) in prose_lines(text) {
        let Some(c) = heading.captures(&line) else {
            continue;
        };
        let base = slug(&c[1]);
        let count = seen.entry(base.clone()).or_insert(0);
        out.insert(if *count == 0 {
            base.clone()
        } else {
            format!("{base}-{count}")
        });
        *count += 1;
    }
    out
}

/// GitHub's anchor for a heading: its text as rendered (links become their
/// text, emphasis and code marks go), lower-cased, with everything but
/// letters, digits, `_`, `-` and spaces dropped, and each space a `-`.
fn slug(heading: &str) -> String {
    let link = Regex::new(r"\[([^\]]*)\]\([^)]*\)").unwrap();
    let text = link.replace_all(heading, "$1");
    text.to_lowercase()
        .chars()
        .filter(|&c| c.is_alphanumeric() || c == '_' || c == '-' || c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}
