//! `eic-ssh cp [-r] [-p] SRC... DST`: scp's syntax over SFTP on the embedded
//! session. Every file is written under a temporary name beside its
//! destination and renamed only once complete, so a failure leaves the
//! destination as it was. Copies between two instances go through here.

mod location;
mod side;

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli;
use crate::connect::login::{self, LoggedIn, LoginOptions};
use crate::error::Error;
use crate::ssh::session;
use crate::ssh::sftp::{self, Finish, Kind, MODE_BITS, Meta, Sftp};
use crate::text::remote_text;
pub use location::Location;
use side::{LocalTemp, Side};

/// Copy as the arguments say; the exit status is 0, or an error.
pub async fn run(args: cli::CpArgs, verbosity: cli::Verbosity) -> Result<u8, Error> {
    let mut locations = args
        .paths
        .iter()
        .map(|a| Location::parse(a).map_err(Error::Usage))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(dest) = locations.pop() else {
        return Err(Error::Usage("cp needs a source and a destination".into()));
    };
    let sources = locations;

    // One session per distinct remote (user, instance).
    let mut sessions: HashMap<(String, String), (LoggedIn, Arc<Sftp>)> = HashMap::new();
    for loc in sources.iter().chain(std::iter::once(&dest)) {
        if let Location::Remote { target, .. } = loc {
            let user = args.user.resolve(Some(target));
            let key = (user.clone(), target.expr.to_string());
            if sessions.contains_key(&key) {
                continue;
            }
            let logged = login::login(
                Some(target),
                LoginOptions {
                    user,
                    settings: args.connect.settings(),
                    dest: args.connect.destination(""),
                    host_keys: args.host_keys.checking(),
                    keepalive: session::Keepalive {
                        interval: std::time::Duration::from_secs(30),
                        count: 4,
                    },
                    quiet: verbosity.quiet,
                    serial_push: false,
                    key_type: None,
                    no_pick: false,
                },
            )
            .await?;
            let sftp = Sftp::start(logged.session.handle())
                .await
                .map_err(|e| logged.explain(e))?;
            sessions.insert(key, (logged, Arc::new(sftp)));
        }
    }
    let side = |loc: &Location| match loc {
        Location::Local(_) => Side::Local,
        Location::Remote { target, .. } => {
            let key = (args.user.resolve(Some(target)), target.expr.to_string());
            sessions
                .get(&key)
                .map(|(_, s)| Side::Remote(s.clone()))
                .unwrap_or(Side::Local)
        }
    };
    let mut progress = Progress::new(verbosity.quiet);
    if args.recursive {
        progress.total();
    }
    let copier = Copier {
        recursive: args.recursive,
        preserve: args.preserve,
        progress: &progress,
        pending: std::sync::Mutex::new(None),
    };
    let work = copier.run(
        sources.iter().map(|s| (s.clone(), side(s))).collect(),
        (dest.clone(), side(&dest)),
    );
    // A lost connection or Ctrl-C ends the copy at once (the SFTP requests
    // in flight would otherwise wait for their timeout); local temporaries
    // are removed as the copy is dropped, a remote one just after.
    let mut stop = crate::term::signals::StopSignals::new()?;
    let result = {
        let lost = async {
            if sessions.is_empty() {
                return std::future::pending().await;
            }
            let ended: Vec<_> = sessions.values().map(|(l, _)| l.session.closed()).collect();
            futures_util::future::select_all(ended.into_iter().map(Box::pin)).await;
        };
        tokio::pin!(lost);
        let r = tokio::select! {
            r = work => r,
            () = &mut lost => Err(lost_error(&sessions)),
            signal = stop.recv() => Err(Error::Interrupted(format!(
                "{signal}: the copy stopped; the file being copied was not finished, and its destination is as it was"
            ))),
        };
        match r {
            // SFTP may notice the connection going a moment before the
            // session does: then the lost connection is the story.
            Err(Error::Copy { .. }) if !sessions.is_empty() => {
                let grace = std::time::Duration::from_millis(500);
                match tokio::time::timeout(grace, &mut lost).await {
                    Ok(()) => Err(lost_error(&sessions)),
                    Err(_) => r,
                }
            }
            r => r,
        }
    };
    copier.clean_up().await;
    progress.finish();
    for (logged, sftp) in sessions.into_values() {
        sftp.close();
        logged.session.close().await;
    }
    result.map(|()| 0)
}

fn lost_error(sessions: &HashMap<(String, String), (LoggedIn, Arc<Sftp>)>) -> Error {
    let (id, logged) = sessions
        .iter()
        .map(|((_, id), (l, _))| (id, l))
        .find(|(_, l)| l.session.handle().is_closed())
        .or_else(|| sessions.iter().map(|((_, id), (l, _))| (id, l)).next())
        .unzip();
    let base = Error::ConnectionLost {
        host: id.cloned().unwrap_or_default(),
        reason: "the copy was cut short; the destination is as it was".into(),
    };
    // How the tunnel ended, with the bytes that got through: closed with an
    // error code, cut, or closed normally but before the copy was done.
    let ended = logged.map(|l| {
        l.closed.explain(Error::Tunnel(
            "the connection ended before the copy finished".into(),
        ))
    });
    match ended {
        Some(closed @ (Error::TunnelCut { .. } | Error::TunnelClosed { .. })) => {
            Error::ConnectionLost {
                host: id.cloned().unwrap_or_default(),
                reason: format!("{closed}; the destination is as it was"),
            }
        }
        _ => base,
    }
}

/// Progress bars on a terminal: one per file, and a running total for -r.
struct Progress {
    multi: Option<MultiProgress>,
    total: Option<ProgressBar>,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        let multi = (!quiet && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress { multi, total: None }
    }

    fn total(&mut self) {
        if let Some(m) = &self.multi {
            let bar = m.add(ProgressBar::no_length());
            bar.set_style(
                ProgressStyle::with_template("total {binary_bytes} {binary_bytes_per_sec} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            self.total = Some(bar);
        }
    }

    fn file(&self, name: &str, size: u64) -> Option<ProgressBar> {
        let m = self.multi.as_ref()?;
        let bar = match &self.total {
            Some(t) => m.insert_before(t, ProgressBar::new(size)),
            None => m.add(ProgressBar::new(size)),
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:30!} {bar:25} {binary_bytes:>10}/{binary_total_bytes} {binary_bytes_per_sec:>12} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(name.to_owned());
        Some(bar)
    }

    fn add_total(&self, n: u64) {
        if let Some(t) = &self.total {
            t.inc(n);
        }
    }

    fn finish(&self) {
        if let Some(t) = &self.total {
            t.finish_and_clear();
        }
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}

struct Copier<'a> {
    recursive: bool,
    preserve: bool,
    progress: &'a Progress,
    /// The remote temporary being written, if any: removed if the copy is
    /// cut short (a local one removes itself, see [`LocalTemp`]).
    pending: std::sync::Mutex<Option<(Side, String)>>,
}

fn copy_error(path: &str, reason: impl Into<String>) -> Error {
    Error::Copy {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// How many levels of directories `-r` goes below a source directory: far
/// more than real trees have, and an end for a server that invents
/// directories for ever (or lists a loop of links as directories).
pub const MAX_DEPTH: usize = 128;

/// One source directory copied with `-r`: where it comes from and where
/// it goes, the bounds of every path the copy touches.
struct Tree<'a> {
    src: &'a Side,
    src_root: &'a str,
    dst: &'a Side,
    dst_root: &'a str,
}

/// Say that `src` is skipped because its destination `dst`, inside a
/// recursive copy, is a symbolic link.
fn not_through_a_link(src: &str, dst: &str) {
    tracing::warn!(
        "skipping {}: its destination {} is a symbolic link, which a recursive copy does not write through",
        remote_text(src),
        remote_text(dst)
    );
}

/// A long path cut in the middle for a message: `/a/b/…/y/z`.
fn abridged(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() <= 7 {
        return path.to_owned();
    }
    let (head, tail) = (&parts[..3], &parts[parts.len() - 3..]);
    format!("{}/…/{}", head.join("/"), tail.join("/"))
}

/// Whether `path` lies strictly under `root`, by its names alone (no
/// empty, `.` or `..` component on the way): the last check before a
/// listed name is used on the destination.
fn under(root: &str, path: &str) -> bool {
    let rest = if root.is_empty() || root == "." {
        Some(path)
    } else if root.ends_with('/') {
        path.strip_prefix(root)
    } else {
        path.strip_prefix(root).and_then(|r| r.strip_prefix('/'))
    };
    rest.is_some_and(|r| {
        !r.is_empty()
            && !r.starts_with('/')
            && r.split('/')
                .all(|c| !matches!(c, "" | "." | "..") && !c.contains('\0'))
    })
}

impl Copier<'_> {
    async fn run(
        &self,
        sources: Vec<(Location, Side)>,
        dest: (Location, Side),
    ) -> Result<(), Error> {
        let (dest_loc, dest_side) = dest;
        let dest_path = dest_loc.path().to_owned();
        let dest_meta = dest_side
            .stat(&dest_path)
            .await
            .map_err(|e| copy_error(&dest_loc.display(), e))?;
        let into_dir = dest_meta.is_some_and(|m| m.kind == Kind::Dir);
        if sources.len() > 1 && !into_dir {
            return Err(copy_error(
                &dest_loc.display(),
                "not a directory (copying several sources needs an existing directory)",
            ));
        }
        // Check every source before copying anything.
        let mut checked = Vec::new();
        for (loc, side) in sources {
            let meta = side
                .stat(loc.path())
                .await
                .map_err(|e| copy_error(&loc.display(), e))?
                .ok_or_else(|| copy_error(&loc.display(), "no such file or directory"))?;
            match meta.kind {
                Kind::Dir if !self.recursive => {
                    return Err(copy_error(&loc.display(), "is a directory (use -r)"));
                }
                Kind::Dir | Kind::File => {}
                _ => return Err(copy_error(&loc.display(), "not a regular file")),
            }
            checked.push((loc, side, meta));
        }
        for (loc, side, meta) in checked {
            let name = location::basename(loc.path());
            let target = if into_dir && !matches!(name, "" | "." | "..") {
                sftp::join(&dest_path, name)
            } else {
                dest_path.clone()
            };
            if meta.kind == Kind::Dir {
                let tree = Tree {
                    src: &side,
                    src_root: loc.path(),
                    dst: &dest_side,
                    dst_root: &target,
                };
                self.copy_dir(&tree, loc.path(), &meta, &target, 0).await?;
            } else {
                self.copy_file(&side, loc.path(), &meta, &dest_side, &target, true)
                    .await?;
            }
        }
        Ok(())
    }

    /// Copy directory `src_path` of `tree` to `dst_path`, `depth` levels
    /// below the tree's root. Every name a listing gives is checked before
    /// use: a suspect one (see [`sftp::name_problem`]) is skipped with a
    /// warning, and so is an entry whose destination is a symbolic link
    /// (below the root, a recursive copy writes only into what it finds or
    /// makes as plain directories and files).
    async fn copy_dir(
        &self,
        tree: &Tree<'_>,
        src_path: &str,
        meta: &Meta,
        dst_path: &str,
        depth: usize,
    ) -> Result<(), Error> {
        let (src, dst) = (tree.src, tree.dst);
        let existing = match depth {
            0 => dst.stat(dst_path).await,
            _ => dst.lstat(dst_path).await,
        };
        match existing.map_err(|e| copy_error(dst_path, e))? {
            Some(m) if m.kind == Kind::Dir => {}
            Some(m) if m.kind == Kind::Link => {
                not_through_a_link(src_path, dst_path);
                return Ok(());
            }
            Some(_) => return Err(copy_error(dst_path, "exists and is not a directory")),
            None => dst
                .mkdir(dst_path, (meta.mode & MODE_BITS) | 0o700)
                .await
                .map_err(|e| copy_error(dst_path, e))?,
        }
        let entries = src
            .list(src_path)
            .await
            .map_err(|e| copy_error(src_path, e))?;
        let mut seen = HashSet::new();
        for (name, m) in entries {
            let shown = || {
                format!(
                    "\"{}\" listed in {}",
                    remote_text(&name),
                    remote_text(src_path)
                )
            };
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
            let (s, d) = (sftp::join(src_path, &name), sftp::join(dst_path, &name));
            if !under(tree.src_root, &s) || !under(tree.dst_root, &d) {
                // Unreachable with the names checked above; kept as the
                // last word on where a write may go.
                return Err(copy_error(
                    &remote_text(&d),
                    format!(
                        "outside the destination {}; nothing written there",
                        remote_text(tree.dst_root)
                    ),
                ));
            }
            match m.kind {
                Kind::Dir if depth + 1 > MAX_DEPTH => {
                    return Err(copy_error(
                        &remote_text(tree.src_root),
                        format!(
                            "more than {MAX_DEPTH} levels of directories below it (a loop, or a server that makes them up without end); the copy stopped at {}",
                            remote_text(&abridged(&s))
                        ),
                    ));
                }
                Kind::Dir => Box::pin(self.copy_dir(tree, &s, &m, &d, depth + 1)).await?,
                Kind::File => self.copy_file(src, &s, &m, dst, &d, false).await?,
                Kind::LinkToDir => tracing::warn!(
                    "skipping {}: a symbolic link to a directory, which -r does not follow",
                    remote_text(&s)
                ),
                Kind::Link => tracing::warn!(
                    "skipping {}: a symbolic link that leads nowhere (missing, or a loop)",
                    remote_text(&s)
                ),
                Kind::Other => {
                    tracing::warn!("skipping {}: not a regular file", remote_text(&s))
                }
            }
        }
        // Times last: writing inside a directory changes its mtime.
        if self.preserve {
            dst.preserve_dir(dst_path, meta, depth == 0)
                .await
                .map_err(|e| copy_error(dst_path, e))?;
        }
        Ok(())
    }

    async fn copy_file(
        &self,
        src: &Side,
        src_path: &str,
        meta: &Meta,
        dst: &Side,
        dst_path: &str,
        follow: bool,
    ) -> Result<(), Error> {
        // Through a symbolic link to the file it names (only one named on
        // the command line); an existing file keeps its mode unless -p
        // gives it the source's, as with scp.
        let Some((landing, existing)) = dst
            .landing(dst_path, follow)
            .await
            .map_err(|e| copy_error(dst_path, e))?
        else {
            not_through_a_link(src_path, dst_path);
            return Ok(());
        };
        let keep_mode = existing
            .filter(|m| m.kind == Kind::File && !self.preserve)
            .map(|m| m.mode & 0o777);
        let temp = temp_name(&landing);
        let mut reader = src
            .reader(src_path, meta.size)
            .await
            .map_err(|e| copy_error(src_path, e))?;
        // Recorded before the file exists: a signal while the server
        // creates it must still find it to remove.
        if !dst.is_local()
            && let Ok(mut pending) = self.pending.lock()
        {
            *pending = Some((dst.clone(), temp.clone()));
        }
        let guard = LocalTemp::new(dst, &temp);
        let mut writer = match dst
            .create(&temp, keep_mode.unwrap_or(meta.mode) & 0o777)
            .await
        {
            Ok(w) => w,
            Err(e) => {
                reader.close().await;
                if let Ok(mut pending) = self.pending.lock() {
                    *pending = None;
                }
                guard.disarm();
                return Err(copy_error(dst_path, e));
            }
        };
        // The name is the server's: no escape sequence reaches the terminal.
        let bar = self
            .progress
            .file(&remote_text(location::basename(src_path)), meta.size);
        let copied = async {
            loop {
                match reader.next().await {
                    Ok(Some(data)) => {
                        writer
                            .write(&data)
                            .await
                            .map_err(|e| copy_error(dst_path, e))?;
                        let n = data.len() as u64;
                        if let Some(b) = &bar {
                            b.inc(n);
                        }
                        self.progress.add_total(n);
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(copy_error(src_path, e)),
                }
            }
        }
        .await;
        reader.close().await;
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        // -p: the source's mode and times; otherwise an existing file's own
        // mode, exactly, whatever the umask took away. Set on the open file.
        let finish = if self.preserve {
            Finish {
                mode: Some(meta.mode),
                times: Some((meta.atime, meta.mtime)),
            }
        } else {
            Finish {
                mode: keep_mode,
                times: None,
            }
        };
        let finished = match copied {
            Ok(()) => writer
                .finish(finish)
                .await
                .map_err(|e| copy_error(dst_path, e)),
            Err(e) => {
                writer.abort().await;
                Err(e)
            }
        };
        let renamed = async {
            finished?;
            dst.rename_over(&temp, &landing)
                .await
                .map_err(|e| copy_error(dst_path, e))
        }
        .await;
        let result = match renamed {
            Ok(()) => {
                guard.disarm();
                tracing::info!(
                    "copied {} to {} ({} bytes)",
                    remote_text(src_path),
                    remote_text(dst_path),
                    meta.size
                );
                Ok(())
            }
            Err(e) => {
                if !dst.is_local() {
                    let _ = dst.remove(&temp).await;
                }
                Err(e)
            }
        };
        if let Ok(mut pending) = self.pending.lock() {
            *pending = None;
        }
        result
    }

    /// Remove the remote temporary of a copy that was cut short (by Ctrl-C,
    /// or by the other side's connection), if its side still answers.
    async fn clean_up(&self) {
        let pending = self.pending.lock().ok().and_then(|mut p| p.take());
        if let Some((side, temp)) = pending {
            let removed = tokio::time::timeout(CLEAN_UP_WITHIN, side.remove(&temp)).await;
            if !matches!(removed, Ok(Ok(()))) {
                tracing::warn!("could not remove the unfinished {temp}");
            }
        }
    }
}

/// How long removing a remote temporary may take once the copy has stopped.
const CLEAN_UP_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// A temporary name beside `path`, hidden, and short enough for any file
/// system however long the file's own name is.
fn temp_name(path: &str) -> String {
    let base = location::basename(path);
    let mut keep = base.len().min(200);
    while !base.is_char_boundary(keep) {
        keep -= 1;
    }
    sftp::join(
        location::dirname(path),
        &format!(
            ".{}.eic-ssh-{:08x}.part",
            &base[..keep],
            rand::random::<u32>()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_path_must_stay_under_its_root() {
        for (root, path, inside) in [
            ("/dest", "/dest/a", true),
            ("/dest", "/dest/a/b", true),
            ("/dest/", "/dest/a", true),
            ("/", "/a", true),
            (".", "a", true),
            ("", "a", true),
            ("dest", "dest/a", true),
            ("/dest", "/dest", false),
            ("/dest", "/dest/", false),
            ("/dest", "/dest/../x", false),
            ("/dest", "/dest/a/../../x", false),
            ("/dest", "/dest/./a", false),
            ("/dest", "/dest//a", false),
            ("/dest", "/destx/a", false),
            ("/dest", "/other/a", false),
            (".", "../a", false),
            (".", "/a", false),
            ("/dest", "/dest/a\0b", false),
        ] {
            assert_eq!(under(root, path), inside, "{root} {path}");
        }
    }

    #[test]
    fn long_paths_are_abridged_in_the_middle() {
        assert_eq!(abridged("/a/b/c"), "/a/b/c");
        assert_eq!(abridged("/deep/d/d/d/d/d/d/d/d"), "/deep/d/…/d/d/d");
    }
}
