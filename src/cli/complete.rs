//! Shell completion candidates for the command line's values.

use clap_complete::engine::CompletionCandidate;

use crate::target::syntax::TargetExpr;

/// Target positions complete from the instances in the lookup cache, by ID
/// and by Name tag (`user@` kept): instant, offline, no AWS call.
pub(super) fn target_completer() -> clap_complete::engine::ArgValueCompleter {
    clap_complete::engine::ArgValueCompleter::new(|current: &std::ffi::OsStr| {
        let current = current.to_string_lossy();
        let (user, partial) = match current.split_once('@') {
            Some((u, p)) => (format!("{u}@"), p.to_owned()),
            None => (String::new(), current.to_string()),
        };
        let seen = crate::target::cache::RouteCache::default_location().instances();
        target_candidates(&seen, &user, &partial)
    })
}

/// `cp`'s sources and destination: local paths, and the cached instances
/// as remote sides (`[USER@]TARGET:`). Nothing after the `:`: completing a
/// remote path would need a connection.
pub(super) fn copy_completer() -> clap_complete::engine::ArgValueCompleter {
    use clap_complete::engine::ValueCompleter;
    clap_complete::engine::ArgValueCompleter::new(|current: &std::ffi::OsStr| {
        let text = current.to_string_lossy();
        if text.contains(':') {
            return Vec::new();
        }
        let mut out = clap_complete::engine::PathCompleter::any().complete(current);
        if text.contains('/') {
            return out;
        }
        let (user, partial) = match text.split_once('@') {
            Some((u, p)) => (format!("{u}@"), p.to_owned()),
            None => (String::new(), text.to_string()),
        };
        let seen = crate::target::cache::RouteCache::default_location().instances();
        out.extend(
            target_candidates(&seen, &user, &partial)
                .into_iter()
                .map(|c| {
                    let value = format!("{}:", c.get_value().to_string_lossy());
                    let help = c.get_help().cloned();
                    CompletionCandidate::new(value).help(help)
                }),
        );
        out
    })
}

/// Whether `word` means itself as one word to every shell that asks (bash
/// and PowerShell insert a candidate as it is, so `$(…)`, a backquote or a
/// space would be read by the shell when the line runs): letters, digits,
/// `.`, `_`, `+` and `-`, not first (an option).
fn shell_safe(word: &str) -> bool {
    let mut chars = word.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
}

/// The IDs and Name tags in `seen` that start with `partial`, each with
/// the other as its help. A Name that would be read as some other kind of
/// target (an ID, an IP, a DNS name, a tag) is left out: typing it would
/// not mean the name. So is one that is not [`shell_safe`]: a Name tag is
/// anyone's text, and the shell would run what it holds (such an instance
/// is reached by its ID, or chosen in the picker).
fn target_candidates(
    seen: &[(String, Option<String>)],
    user: &str,
    partial: &str,
) -> Vec<CompletionCandidate> {
    let mut out = Vec::new();
    for (id, name) in seen {
        let name = name.clone().filter(|n| shell_safe(n));
        if crate::target::syntax::validate_instance_id(id).is_ok() && id.starts_with(partial) {
            out.push(
                CompletionCandidate::new(format!("{user}{id}")).help(name.clone().map(Into::into)),
            );
        }
    }
    let mut names: Vec<(&str, &str)> = seen
        .iter()
        .filter_map(|(id, name)| Some((name.as_deref()?, id.as_str())))
        .filter(|(name, id)| {
            shell_safe(name) && crate::target::syntax::validate_instance_id(id).is_ok()
        })
        .filter(|(name, _)| name.starts_with(partial))
        .filter(|(name, _)| matches!(name.parse::<TargetExpr>(), Ok(TargetExpr::Name(_))))
        .collect();
    names.sort();
    // Two instances with one Name: the name once (choosing is the picker's job).
    names.dedup_by(|a, b| {
        if a.0 == b.0 {
            b.1 = "several instances";
            true
        } else {
            false
        }
    });
    for (name, id) in names {
        out.push(
            CompletionCandidate::new(format!("{user}{name}")).help(Some(id.to_owned().into())),
        );
    }
    out
}

/// `-p`: the only two ports the service allows.
pub(super) fn port_candidates() -> clap_complete::engine::ArgValueCandidates {
    clap_complete::engine::ArgValueCandidates::new(|| {
        vec![
            CompletionCandidate::new("22").help(Some("SSH".into())),
            CompletionCandidate::new("3389").help(Some("RDP".into())),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(c: &[CompletionCandidate]) -> Vec<String> {
        c.iter()
            .map(|c| c.get_value().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn ids_and_names_complete_with_the_user_kept() {
        let seen = vec![
            ("i-0aaa0000".to_owned(), Some("web-1".to_owned())),
            ("i-0bbb0000".to_owned(), Some("web-1".to_owned())),
            ("i-0ccc0000".to_owned(), Some("worker".to_owned())),
            ("i-0ddd0000".to_owned(), None),
            ("i-0eee0000".to_owned(), Some("10.0.0.1".to_owned())),
            ("i-0fff0000".to_owned(), Some("i-0123".to_owned())),
        ];
        assert_eq!(
            values(&target_candidates(&seen, "", "w")),
            ["web-1", "worker"]
        );
        assert_eq!(
            values(&target_candidates(&seen, "ec2-user@", "i-0c")),
            ["ec2-user@i-0ccc0000"]
        );
        // A name that parses as an IP or an ID is not offered as a name.
        assert_eq!(
            values(&target_candidates(&seen, "", "1")),
            Vec::<String>::new()
        );
        assert_eq!(
            values(&target_candidates(&seen, "", "i-0f")),
            ["i-0fff0000"]
        );
        let all = target_candidates(&seen, "", "");
        assert_eq!(all.len(), 6 + 2);
        let web = all.iter().find(|c| c.get_value() == "web-1").unwrap();
        assert_eq!(
            web.get_help().map(|h| h.to_string()).as_deref(),
            Some("several instances")
        );
    }

    /// A Name (or an ID) the shell would read as more than itself is never
    /// offered, nor shown as help.
    #[test]
    fn only_names_that_are_one_plain_shell_word_are_offered() {
        let seen = vec![
            ("i-0aaa0000".to_owned(), Some("web$(touch x)".to_owned())),
            ("i-0bbb0000".to_owned(), Some("web`id`".to_owned())),
            ("i-0ccc0000".to_owned(), Some("web server".to_owned())),
            ("i-0ddd0000".to_owned(), Some("web;reboot".to_owned())),
            ("i-0eee0000".to_owned(), Some("-oweb".to_owned())),
            ("i-0fff0000".to_owned(), Some("web_2.prod+x".to_owned())),
            ("i-0$(id)".to_owned(), Some("web-3".to_owned())),
        ];
        assert_eq!(
            values(&target_candidates(&seen, "", "")),
            [
                "i-0aaa0000",
                "i-0bbb0000",
                "i-0ccc0000",
                "i-0ddd0000",
                "i-0eee0000",
                "i-0fff0000",
                "web_2.prod+x"
            ]
        );
        let helps: Vec<String> = target_candidates(&seen, "", "i-")
            .iter()
            .filter_map(|c| Some(c.get_help()?.to_string()))
            .collect();
        assert_eq!(helps, ["web_2.prod+x"]);
        assert!(!shell_safe("") && !shell_safe("a\u{202E}b") && !shell_safe("é"));
    }
}
