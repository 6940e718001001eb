//! Remote globs, as scp expands them: `web-1:'logs/*.gz'` names the files
//! of the instance's `logs` that end in `.gz`. The pattern is matched here,
//! against the instance's SFTP listings, component by component; no remote
//! shell ever sees it. The names come from the instance, so each one is
//! checked as a recursive copy checks them before it becomes a path.

use std::collections::HashSet;

use glob::{MatchOptions, Pattern};

use super::side::Side;
use crate::ssh::sftp::{self, Kind};
use crate::text::remote_text;

/// The most paths one pattern may match, and the most directories it may
/// list on the way (those of glob(3) in OpenSSH's sftp client): a server
/// that lists without end must not keep the copy listing for ever.
pub const MAX_MATCHES: usize = 65_536;
pub const MAX_LISTINGS: usize = 16_384;

/// The shell's rules: `*` and `?` never match a `/` (names never hold one)
/// nor a leading `.`, case counts.
const RULES: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: true,
};

/// Whether `path` is a pattern: a wildcard, or a backslash that escapes
/// one (`star\*.gz` names `star*.gz`). Any other path is used as it is.
pub fn is_pattern(path: &str) -> bool {
    has_wildcard(path) || path.contains('\\')
}

/// Whether `path` holds a wildcard (`*`, `?` or `[`) that a backslash does
/// not escape.
fn has_wildcard(path: &str) -> bool {
    let mut escaped = false;
    for c in path.chars() {
        match (escaped, c) {
            (false, '\\') => escaped = true,
            (false, '*' | '?' | '[') => return true,
            _ => escaped = false,
        }
    }
    false
}

/// One component of a pattern: a name to match, or one to take as it is.
enum Part {
    Match(Pattern),
    Literal(String),
}

/// A component as glob(3) reads it: a backslash makes the next character
/// plain. A component whose brackets do not close is plain text too.
fn part(component: &str) -> Part {
    if has_wildcard(component) {
        let mut text = String::new();
        let mut chars = component.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(next) => text.push_str(&Pattern::escape(&next.to_string())),
                    None => text.push('\\'),
                },
                c => text.push(c),
            }
        }
        if let Ok(p) = Pattern::new(&text) {
            return Part::Match(p);
        }
    }
    let mut plain = String::new();
    let mut chars = component.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => plain.push(chars.next().unwrap_or('\\')),
            c => plain.push(c),
        }
    }
    Part::Literal(plain)
}

/// What a match skips, with the warning that says why.
fn skipped(path: &str, why: &str) {
    tracing::warn!("skipping {}: {why}", remote_text(path));
}

/// The paths on `side` that `pattern` matches, sorted; empty when none do
/// (the caller then takes the pattern as a plain name, as glob(3) with
/// GLOB_NOCHECK, so that it is reported missing). Of the last component's
/// matches, files and (with `recursive`) directories are kept; a link to
/// a directory, a link that leads nowhere and anything else are skipped
/// with a warning, as a recursive copy skips them. A listed name that is
/// not a name of its own (empty, `/` or NUL in it, `.` or `..`) is skipped
/// with a warning before anything is done with it.
pub async fn expand(side: &Side, pattern: &str, recursive: bool) -> Result<Vec<String>, String> {
    let absolute = pattern.starts_with('/');
    let parts: Vec<Part> = pattern
        .split('/')
        .filter(|c| !c.is_empty())
        .map(part)
        .collect();
    let mut bases = vec![if absolute {
        "/".to_owned()
    } else {
        String::new()
    }];
    let mut listings = 0;
    let mut unlisted: Option<String> = None;
    for (i, p) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let mut next = Vec::new();
        for base in &bases {
            let pattern = match p {
                Part::Literal(name) => {
                    next.push(sftp::join(base, name));
                    continue;
                }
                Part::Match(pattern) => pattern,
            };
            listings += 1;
            if listings > MAX_LISTINGS {
                return Err(format!(
                    "the pattern would list more than {MAX_LISTINGS} directories"
                ));
            }
            let dir = if base.is_empty() { "." } else { base.as_str() };
            let entries = match side.list(dir).await {
                Ok(entries) => entries,
                // As glob(3): a directory that cannot be read matches
                // nothing; said if nothing matches at all.
                Err(e) => {
                    unlisted.get_or_insert_with(|| format!("cannot list {dir}: {e}"));
                    continue;
                }
            };
            let mut seen = HashSet::new();
            for (name, meta) in entries {
                if !pattern.matches_with(&name, RULES) {
                    continue;
                }
                let shown = || format!("\"{}\" listed in {}", remote_text(&name), remote_text(dir));
                if let Some(problem) = sftp::name_problem(&name) {
                    tracing::warn!(
                        "skipping {}: {problem}, a suspect name that could write outside the destination",
                        shown()
                    );
                    continue;
                }
                if !seen.insert(name.clone()) {
                    tracing::warn!("skipping {}: listed twice", shown());
                    continue;
                }
                let path = sftp::join(base, &name);
                match (meta.kind, last) {
                    (Kind::Dir | Kind::LinkToDir, false) => {}
                    (_, false) => continue,
                    (Kind::File, true) => {}
                    (Kind::Dir, true) if recursive => {}
                    (Kind::Dir, true) => {
                        skipped(&path, "a directory (use -r)");
                        continue;
                    }
                    (Kind::LinkToDir, true) => {
                        skipped(
                            &path,
                            "a symbolic link to a directory, which a pattern does not follow",
                        );
                        continue;
                    }
                    (Kind::Link, true) => {
                        skipped(
                            &path,
                            "a symbolic link that leads nowhere (missing, or a loop)",
                        );
                        continue;
                    }
                    (Kind::Other, true) => {
                        skipped(&path, "not a regular file");
                        continue;
                    }
                }
                if next.len() >= MAX_MATCHES {
                    return Err(format!("the pattern matches more than {MAX_MATCHES} paths"));
                }
                next.push(path);
            }
        }
        bases = next;
    }
    // A plain last name (`*/error.log`, or `star\*.gz`, escapes alone):
    // only where it is.
    if matches!(parts.last(), Some(Part::Literal(_))) {
        let mut found = Vec::new();
        for path in bases {
            if matches!(side.stat(&path).await, Ok(Some(_))) {
                found.push(path);
            }
        }
        bases = found;
    }
    if bases.is_empty()
        && let Some(why) = unlisted
    {
        return Err(why);
    }
    bases.sort();
    Ok(bases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_unless_escaped() {
        for (path, wild) in [
            ("logs/*.gz", true),
            ("a?c", true),
            ("[ab].gz", true),
            ("plain/name.gz", false),
            ("star\\*.gz", false),
            ("back\\\\*", true),
            ("", false),
        ] {
            assert_eq!(has_wildcard(path), wild, "{path}");
        }
        assert!(is_pattern("star\\*.gz") && is_pattern("*") && !is_pattern("a/b.gz"));
    }

    #[test]
    fn components_match_as_the_shell_matches() {
        let matches = |component: &str, name: &str| match part(component) {
            Part::Match(p) => p.matches_with(name, RULES),
            Part::Literal(l) => l == name,
        };
        assert!(matches("*.gz", "a.gz"));
        assert!(!matches("*.gz", ".hidden.gz"));
        assert!(matches(".*.gz", ".hidden.gz"));
        assert!(!matches("*.gz", "a.GZ"));
        assert!(matches("[ab].gz", "b.gz") && !matches("[ab].gz", "c.gz"));
        assert!(matches("[!a].gz", "b.gz") && !matches("[!a].gz", "a.gz"));
        assert!(matches("?.gz", "x.gz") && !matches("?.gz", "xy.gz"));
        // Escaped, a wildcard is itself.
        assert!(matches("star\\*.gz", "star*.gz") && !matches("star\\*.gz", "stars.gz"));
        assert!(matches("a\\*b*", "a*bc") && !matches("a\\*b*", "axbc"));
        // Brackets that never close are plain text.
        assert!(matches("[oops", "[oops"));
    }
}
