//! The lookup cache: instance → route (private IP, VPC, subnet, endpoint ID,
//! DNS name), per profile, region and instance, for a bounded time, so that
//! a repeat connection needs only the tunnel handshake and the concurrent
//! key push. It holds no secrets, is written atomically and user-only, and
//! is never trusted blindly: a cached route that fails before SSH starts is
//! dropped and looked up afresh, once.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::fs::atomic;
use crate::target::Route;
use crate::target::syntax::TargetExpr;

/// How long a route is trusted without a fresh lookup.
pub const TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    private_ip: IpAddr,
    vpc_id: Option<String>,
    subnet_id: Option<String>,
    endpoint_id: String,
    dns_name: String,
    /// Seconds since the Unix epoch.
    saved_at: u64,
    /// The ephemeral key type the instance accepted when ed25519 was
    /// refused (`ecdsa`), so the next connection pushes that type directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_type: Option<String>,
    /// The instance's `Name` tag when it was looked up, so that shell
    /// completion can offer names as well as IDs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

/// The cache file for one user.
#[derive(Debug, Clone)]
pub struct RouteCache {
    path: PathBuf,
    ttl: Duration,
}

impl RouteCache {
    /// `$XDG_CACHE_HOME/eic-ssh/routes.json`, else `~/.cache/eic-ssh/routes.json`.
    pub fn default_location() -> RouteCache {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::home_dir().unwrap_or_default().join(".cache"));
        RouteCache::at(base.join("eic-ssh").join("routes.json"))
    }

    pub fn at(path: PathBuf) -> RouteCache {
        RouteCache { path, ttl: TTL }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cached route, if fresh.
    pub fn get(&self, profile: Option<&str>, region: &str, instance_id: &str) -> Option<Route> {
        let entries = self.load();
        let e = entries.get(&key(profile, region, instance_id))?;
        let age = now().saturating_sub(e.saved_at);
        if age > self.ttl.as_secs() {
            return None;
        }
        Some(Route {
            instance_id: instance_id.to_owned(),
            private_ip: e.private_ip,
            vpc_id: e.vpc_id.clone(),
            subnet_id: e.subnet_id.clone(),
            endpoint_id: e.endpoint_id.clone(),
            dns_name: e.dns_name.clone(),
            name: e.name.clone(),
        })
    }

    /// Remember a route that worked. Failures to write are logged, not fatal.
    pub fn put(&self, profile: Option<&str>, region: &str, route: &Route) {
        self.put_all(profile, region, std::slice::from_ref(route));
    }

    /// Remember routes, in one write (`ls` records what it listed).
    pub fn put_all(&self, profile: Option<&str>, region: &str, routes: &[Route]) {
        if routes.is_empty() {
            return;
        }
        // Re-read under the lock: another process may have added its own.
        let _lock = match self.lock() {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!("not caching the route in {}: {e}", self.path.display());
                return;
            }
        };
        let mut entries = self.load();
        let t = now();
        entries.retain(|_, e| t.saturating_sub(e.saved_at) <= self.ttl.as_secs());
        for route in routes {
            let k = key(profile, region, &route.instance_id);
            let key_type = entries.get(&k).and_then(|e| e.key_type.clone());
            // A route given on the command line carries no name: keep the
            // one an earlier lookup saw.
            let name = route
                .name
                .clone()
                .or_else(|| entries.get(&k).and_then(|e| e.name.clone()));
            entries.insert(
                k,
                Entry {
                    private_ip: route.private_ip,
                    vpc_id: route.vpc_id.clone(),
                    subnet_id: route.subnet_id.clone(),
                    endpoint_id: route.endpoint_id.clone(),
                    dns_name: route.dns_name.clone(),
                    saved_at: t,
                    key_type,
                    name,
                },
            );
        }
        if let Err(e) = self.save(&entries) {
            tracing::debug!("not caching the route in {}: {e}", self.path.display());
        }
    }

    /// The key type remembered for the instance, if its route is cached.
    pub fn key_type(
        &self,
        profile: Option<&str>,
        region: &str,
        instance_id: &str,
    ) -> Option<String> {
        let entries = self.load();
        let e = entries.get(&key(profile, region, instance_id))?;
        let fresh = now().saturating_sub(e.saved_at) <= self.ttl.as_secs();
        fresh.then(|| e.key_type.clone()).flatten()
    }

    /// Remember the key type the instance accepted, beside its cached route.
    pub fn set_key_type(
        &self,
        profile: Option<&str>,
        region: &str,
        instance_id: &str,
        key_type: &str,
    ) {
        let Ok(_lock) = self.lock() else { return };
        let mut entries = self.load();
        if let Some(e) = entries.get_mut(&key(profile, region, instance_id)) {
            e.key_type = Some(key_type.to_owned());
            if let Err(e) = self.save(&entries) {
                tracing::debug!("not caching the key type in {}: {e}", self.path.display());
            }
        }
    }

    /// The instance a target expression found last time, when exactly one
    /// fresh entry of this profile and region matches it: by the Name tag
    /// seen then, or by private IP. Other expressions (tags, DNS names) are
    /// not remembered.
    pub fn instance_for(
        &self,
        profile: Option<&str>,
        region: &str,
        expr: &TargetExpr,
    ) -> Option<String> {
        let prefix = key(profile, region, "");
        let t = now();
        let mut found = self
            .load()
            .into_iter()
            .filter(|(k, e)| {
                k.starts_with(&prefix) && t.saturating_sub(e.saved_at) <= self.ttl.as_secs()
            })
            .filter(|(_, e)| match expr {
                TargetExpr::Name(n) => e.name.as_deref() == Some(n.as_str()),
                TargetExpr::PrivateIp(ip) => e.private_ip == IpAddr::V4(*ip),
                _ => false,
            })
            .map(|(k, _)| k[prefix.len()..].to_owned());
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }

    /// Every instance in the cache, fresh or not, as (ID, Name tag if seen),
    /// sorted by ID and without repeats across profiles and regions (for
    /// shell completion: what eic-ssh has seen).
    pub fn instances(&self) -> Vec<(String, Option<String>)> {
        let mut seen: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (k, e) in self.load() {
            let Some(id) = k.rsplit('|').next() else {
                continue;
            };
            let slot = seen.entry(id.to_owned()).or_default();
            if slot.is_none() {
                *slot = e.name.filter(|n| !n.is_empty());
            }
        }
        seen.into_iter().collect()
    }

    /// Forget one route (it failed).
    pub fn remove(&self, profile: Option<&str>, region: &str, instance_id: &str) {
        let Ok(_lock) = self.lock() else { return };
        let mut entries = self.load();
        if entries.remove(&key(profile, region, instance_id)).is_some() {
            let _ = self.save(&entries);
        }
    }

    /// Forget everything: `eic-ssh cache clear`.
    pub fn clear(&self) -> std::io::Result<bool> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Hold the cache's lock while reading, changing and writing it.
    fn lock(&self) -> std::io::Result<crate::fs::lock::Locked> {
        atomic::private_dir(atomic::parent(&self.path))?;
        crate::fs::lock::lock_beside(&self.path)
    }

    fn load(&self) -> BTreeMap<String, Entry> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Replace the cache whole (user-only): readers need no lock.
    fn save(&self, entries: &BTreeMap<String, Entry>) -> std::io::Result<()> {
        atomic::private_dir(atomic::parent(&self.path))?;
        let body = serde_json::to_vec_pretty(entries).map_err(std::io::Error::other)?;
        atomic::write(&self.path, &body, 0o600)
    }
}

fn key(profile: Option<&str>, region: &str, instance_id: &str) -> String {
    format!("{}|{region}|{instance_id}", profile.unwrap_or("default"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> Route {
        Route {
            instance_id: "i-0123456789abcdef0".into(),
            private_ip: IpAddr::from([10, 0, 1, 10]),
            vpc_id: Some("vpc-1".into()),
            subnet_id: Some("subnet-1".into()),
            endpoint_id: "eice-1".into(),
            dns_name: "eice-1.example".into(),
            name: Some("web-1".into()),
        }
    }

    #[test]
    fn round_trips_per_profile_and_region() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RouteCache::at(dir.path().join("sub/routes.json"));
        assert_eq!(cache.get(None, "us-east-1", "i-0123456789abcdef0"), None);
        cache.put(None, "us-east-1", &route());
        assert_eq!(
            cache.get(None, "us-east-1", "i-0123456789abcdef0"),
            Some(route())
        );
        assert_eq!(
            cache.get(Some("other"), "us-east-1", "i-0123456789abcdef0"),
            None
        );
        assert_eq!(cache.get(None, "eu-west-1", "i-0123456789abcdef0"), None);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cache.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(cache.path()).unwrap();
        assert!(text.contains("10.0.1.10") && !text.contains("Secret"));
        // The key type rides along with the route, and survives a refresh.
        assert_eq!(
            cache.key_type(None, "us-east-1", "i-0123456789abcdef0"),
            None
        );
        cache.set_key_type(None, "us-east-1", "i-0123456789abcdef0", "ecdsa");
        cache.put(None, "us-east-1", &route());
        assert_eq!(
            cache
                .key_type(None, "us-east-1", "i-0123456789abcdef0")
                .as_deref(),
            Some("ecdsa")
        );
        cache.remove(None, "us-east-1", "i-0123456789abcdef0");
        assert_eq!(cache.get(None, "us-east-1", "i-0123456789abcdef0"), None);
        assert!(!cache.clear().unwrap() || !cache.path().exists());
    }

    #[test]
    fn a_name_or_ip_finds_the_one_instance_it_found_before() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RouteCache::at(dir.path().join("routes.json"));
        let name = |n: &str| TargetExpr::Name(n.into());
        assert_eq!(cache.instance_for(None, "r", &name("web-1")), None);
        cache.put(None, "r", &route());
        assert_eq!(
            cache.instance_for(None, "r", &name("web-1")).as_deref(),
            Some("i-0123456789abcdef0")
        );
        let ip = TargetExpr::PrivateIp([10, 0, 1, 10].into());
        assert_eq!(
            cache.instance_for(None, "r", &ip).as_deref(),
            Some("i-0123456789abcdef0")
        );
        // Another profile or region, another name: nothing.
        assert_eq!(cache.instance_for(Some("p"), "r", &name("web-1")), None);
        assert_eq!(cache.instance_for(None, "r2", &name("web-1")), None);
        assert_eq!(cache.instance_for(None, "r", &name("web-2")), None);
        // Two instances with that name: no guess.
        let mut twin = route();
        twin.instance_id = "i-0fedcba9876543210".into();
        twin.private_ip = IpAddr::from([10, 0, 1, 11]);
        cache.put(None, "r", &twin);
        assert_eq!(cache.instance_for(None, "r", &name("web-1")), None);
        assert_eq!(
            cache.instance_for(None, "r", &ip).as_deref(),
            Some("i-0123456789abcdef0")
        );
    }

    /// An entry is read while it is younger than the TTL, and not once it
    /// is older: its age is set by rewriting when it was saved, so no test
    /// waits for an hour (or a second) to pass.
    #[test]
    fn stale_entries_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RouteCache::at(dir.path().join("routes.json"));
        let aged = |secs: u64| {
            let mut entries = cache.load();
            for e in entries.values_mut() {
                e.saved_at = now() - secs;
            }
            cache.save(&entries).unwrap();
        };
        cache.put(None, "r", &route());
        let name = TargetExpr::Name("web-1".into());
        for (age, fresh) in [
            (0, true),
            (TTL.as_secs() - 60, true),
            (TTL.as_secs() + 60, false),
        ] {
            aged(age);
            let got = cache.get(None, "r", "i-0123456789abcdef0");
            assert_eq!(got.is_some(), fresh, "an entry {age} s old");
            assert_eq!(
                cache.instance_for(None, "r", &name).is_some(),
                fresh,
                "{age} s"
            );
        }
    }
}
