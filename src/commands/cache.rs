//! `eic-ssh cache`: clear the route cache, or say where it lives.

use crate::cli::CacheAction;
use crate::error::Error;
use crate::target::cache::RouteCache;

pub fn run(action: &CacheAction, quiet: bool) -> Result<u8, Error> {
    let cache = RouteCache::default_location();
    match action {
        CacheAction::Clear => {
            let removed = cache.clear()?;
            if !quiet {
                let what = if removed {
                    "cleared"
                } else {
                    "was already empty"
                };
                eprintln!(
                    "eic-ssh: the lookup cache {what} ({})",
                    cache.path().display()
                );
            }
        }
        CacheAction::Path => crate::term::out(&format!("{}\n", cache.path().display()))?,
    }
    Ok(0)
}
