//! Shell completion candidates for the command line's values.

/// Target positions complete from the instance IDs in the lookup cache
/// (`user@` kept): instant, offline, no AWS call.
pub(super) fn target_completer() -> clap_complete::engine::ArgValueCompleter {
    clap_complete::engine::ArgValueCompleter::new(|current: &std::ffi::OsStr| {
        let current = current.to_string_lossy();
        let (user, partial) = match current.split_once('@') {
            Some((u, p)) => (format!("{u}@"), p.to_owned()),
            None => (String::new(), current.to_string()),
        };
        crate::route::cache::RouteCache::default_location()
            .instance_ids()
            .into_iter()
            .filter(|id| id.starts_with(&partial))
            .map(|id| clap_complete::engine::CompletionCandidate::new(format!("{user}{id}")))
            .collect()
    })
}

/// `-p`: the only two ports the service allows.
pub(super) fn port_candidates() -> clap_complete::engine::ArgValueCandidates {
    clap_complete::engine::ArgValueCandidates::new(|| {
        vec![
            clap_complete::engine::CompletionCandidate::new("22").help(Some("SSH".into())),
            clap_complete::engine::CompletionCandidate::new("3389").help(Some("RDP".into())),
        ]
    })
}
