//! Shell completion candidates for the command line's values.

use clap_complete::engine::CompletionCandidate;

use crate::route::target::TargetExpr;

/// Target positions complete from the instances in the lookup cache, by ID
/// and by Name tag (`user@` kept): instant, offline, no AWS call.
pub(super) fn target_completer() -> clap_complete::engine::ArgValueCompleter {
    clap_complete::engine::ArgValueCompleter::new(|current: &std::ffi::OsStr| {
        let current = current.to_string_lossy();
        let (user, partial) = match current.split_once('@') {
            Some((u, p)) => (format!("{u}@"), p.to_owned()),
            None => (String::new(), current.to_string()),
        };
        let seen = crate::route::cache::RouteCache::default_location().instances();
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
        let seen = crate::route::cache::RouteCache::default_location().instances();
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

/// The IDs and Name tags in `seen` that start with `partial`, each with
/// the other as its help. A Name that would be read as some other kind of
/// target (an ID, an IP, a DNS name, a tag) is left out: typing it would
/// not mean the name.
fn target_candidates(
    seen: &[(String, Option<String>)],
    user: &str,
    partial: &str,
) -> Vec<CompletionCandidate> {
    let mut out = Vec::new();
    for (id, name) in seen {
        if id.starts_with(partial) {
            out.push(
                CompletionCandidate::new(format!("{user}{id}")).help(name.clone().map(Into::into)),
            );
        }
    }
    let mut names: Vec<(&str, &str)> = seen
        .iter()
        .filter_map(|(id, name)| Some((name.as_deref()?, id.as_str())))
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
            ("i-0aaa".to_owned(), Some("web-1".to_owned())),
            ("i-0bbb".to_owned(), Some("web-1".to_owned())),
            ("i-0ccc".to_owned(), Some("worker".to_owned())),
            ("i-0ddd".to_owned(), None),
            ("i-0eee".to_owned(), Some("10.0.0.1".to_owned())),
            ("i-0fff".to_owned(), Some("i-0123".to_owned())),
        ];
        assert_eq!(
            values(&target_candidates(&seen, "", "w")),
            ["web-1", "worker"]
        );
        assert_eq!(
            values(&target_candidates(&seen, "ec2-user@", "i-0c")),
            ["ec2-user@i-0ccc"]
        );
        // A name that parses as an IP or an ID is not offered as a name.
        assert_eq!(
            values(&target_candidates(&seen, "", "1")),
            Vec::<String>::new()
        );
        assert_eq!(values(&target_candidates(&seen, "", "i-0f")), ["i-0fff"]);
        let all = target_candidates(&seen, "", "");
        assert_eq!(all.len(), 6 + 2);
        let web = all.iter().find(|c| c.get_value() == "web-1").unwrap();
        assert_eq!(
            web.get_help().map(|h| h.to_string()).as_deref(),
            Some("several instances")
        );
    }
}
