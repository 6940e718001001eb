//! `eic-ssh cp` against a hostile instance ([`HostileSftp`]): what its
//! listings say must never put a file outside the destination, give one a
//! setuid bit, hang the copy or reach the terminal; and an upload must not
//! follow another user's link in a sticky directory.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use eic_sim::{Instance, World};

use crate::hostile_sftp::{DIR, HostileSftp, LNK, Node, READ_AS_A_FILE, REG, Tree};
use crate::support::*;

/// The hostile instance, beside the fixture's real one.
const HOSTILE: &str = "i-0badc0ffee0000001";

/// What the test's own files look like: type, permission bits, and bytes
/// (a link's target), by path, links not followed.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (char, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let entry = if m.file_type().is_symlink() {
                let target = std::fs::read_link(&p).unwrap();
                ('l', 0, target.into_os_string().into_encoded_bytes())
            } else if m.is_dir() {
                stack.push(p.clone());
                ('d', m.mode() & 0o7777, Vec::new())
            } else {
                ('f', m.mode() & 0o7777, std::fs::read(&p).unwrap())
            };
            out.insert(p, entry);
        }
    }
    out
}

/// The snapshot without what lies under `dir`.
fn outside(
    snap: &BTreeMap<PathBuf, (char, u32, Vec<u8>)>,
    dir: &Path,
) -> BTreeMap<PathBuf, (char, u32, Vec<u8>)> {
    snap.iter()
        .filter(|(p, _)| !p.starts_with(dir))
        .map(|(p, e)| (p.clone(), e.clone()))
        .collect()
}

/// The fixture (a real sshd as INSTANCE) with HOSTILE served by `tree`,
/// its host key already in known_hosts.
async fn hostile(tree: Tree) -> (Fixture, HostileSftp) {
    let mut world = World::demo();
    let template = world.instances[0].clone();
    world.instances.push(Instance {
        id: HOSTILE.into(),
        private_ip: Some("10.0.1.99".into()),
        tags: vec![("Name".into(), "hostile".into())],
        ssh: None,
        ..template
    });
    let f = Fixture::with_world(world).await;
    let server = HostileSftp::start(tree).await;
    f.sim.set_world(|w| {
        if let Some(i) = w.instances.iter_mut().find(|i| i.id == HOSTILE) {
            i.ssh = Some(server.addr);
        }
    });
    let key: Vec<&str> = server.host_key_pub.split_whitespace().take(2).collect();
    std::fs::create_dir_all(f.known_hosts().parent().unwrap()).unwrap();
    std::fs::write(f.known_hosts(), format!("{HOSTILE} {}\n", key.join(" "))).unwrap();
    (f, server)
}

fn on_hostile(f: &Fixture, path: &str) -> String {
    format!("{}@{HOSTILE}:{path}", f.user())
}

/// The tree of a hostile `/t`: every trick in one listing, each beside a
/// real file so that following the name would have written something.
fn traversal_tree() -> Tree {
    let mut t = Tree {
        loop_name: Some("loop".into()),
        ..Tree::default()
    };
    t.dir(
        "/t",
        DIR | 0o755,
        &[
            (".", DIR | 0o755),
            ("..", DIR | 0o755),
            ("../../outside/victim", REG | 0o644),
            ("sub/inner", REG | 0o644),
            ("", REG | 0o644),
            ("nul\0byte", REG | 0o644),
            ("sub", DIR | 0o755),
            ("setuid", REG | 0o4755),
            ("setgid", REG | 0o2755),
            ("sgid-dir", DIR | 0o3775),
            ("loop", LNK | 0o777),
            ("to-file", LNK | 0o777),
            ("dangling", LNK | 0o777),
            ("dup", REG | 0o644),
            ("dup", REG | 0o644),
            ("says-dir", DIR | 0o755),
            ("says-file", REG | 0o644),
            ("plain.txt", REG | 0o644),
        ],
    );
    for name in [
        "/t/../../outside/victim",
        "/t/sub/inner",
        "/t/",
        "/t/nul\0byte",
        "/t/says-dir/../../../outside/victim",
    ] {
        t.file(name, 0o644, b"PWNED");
    }
    t.dir("/t/sub", DIR | 0o755, &[("ok.txt", REG | 0o600)]);
    t.file("/t/sub/ok.txt", 0o600, b"ok");
    t.file("/t/setuid", 0o4755, b"#!/bin/sh\n");
    t.file("/t/setgid", 0o2755, b"#!/bin/sh\n");
    t.dir("/t/sgid-dir", DIR | 0o3775, &[("inner", REG | 0o644)]);
    t.file("/t/sgid-dir/inner", 0o644, b"inner");
    t.nodes.insert(
        "/t/to-file".into(),
        Node::Link(Some(Box::new(Node::File {
            mode: REG | 0o644,
            data: b"through a link".to_vec(),
        }))),
    );
    t.nodes.insert("/t/dangling".into(), Node::Link(None));
    t.file("/t/dup", 0o644, b"first");
    // The listing says directory and regular file; the server's own
    // answers say the opposite: the copy follows the listing, inside.
    t.dir(
        "/t/says-dir",
        DIR | 0o755,
        &[
            ("../../../outside/victim", REG | 0o644),
            ("..", REG | 0o644),
        ],
    );
    t.dir("/t/says-file", DIR | 0o755, &[("x", REG | 0o644)]);
    t.file("/t/plain.txt", 0o644, b"hello");
    t
}

/// The warnings a copy of the hostile `/t` must print, one for each name it
/// refuses or entry it skips.
const WARNINGS: &[&str] = &[
    "skipping \"../../outside/victim\" listed in /t: a name with '/' in it, a suspect name that could write outside the destination",
    "skipping \"sub/inner\" listed in /t: a name with '/' in it, a suspect name that could write outside the destination",
    "skipping \"\" listed in /t: an empty name, a suspect name that could write outside the destination",
    "skipping \"nulbyte\" listed in /t: a name with a NUL byte in it, a suspect name that could write outside the destination",
    "skipping \"../../../outside/victim\" listed in /t/says-dir: a name with '/' in it, a suspect name that could write outside the destination",
    "skipping \"..\" listed in /t/says-dir: not a name of its own, a suspect name that could write outside the destination",
    "skipping \"dup\" listed in /t: listed twice",
    "skipping /t/loop: a symbolic link to a directory, which -r does not follow",
    "skipping /t/dangling: a symbolic link that leads nowhere (missing, or a loop)",
];

/// What lands under DEST/t: only the listing's sound entries, all plain
/// files and directories.
fn expected_tree(t: &Path, preserve: bool) -> BTreeMap<PathBuf, (char, u32, Vec<u8>)> {
    let f = |mode: u32, data: &[u8]| ('f', mode, data.to_vec());
    let d = |mode: u32| ('d', mode, Vec::new());
    // Without -p, new files get the source's bits less the umask (022):
    // the same here, as the source's are 0755 and 0644 once masked.
    let (exec, rw) = (0o755, 0o644);
    BTreeMap::from([
        (t.join("plain.txt"), f(rw, b"hello")),
        (t.join("setuid"), f(exec, b"#!/bin/sh\n")),
        (t.join("setgid"), f(exec, b"#!/bin/sh\n")),
        (t.join("sgid-dir"), d(if preserve { 0o775 } else { 0o755 })),
        (t.join("sgid-dir/inner"), f(rw, b"inner")),
        (t.join("sub"), d(0o755)),
        (t.join("sub/ok.txt"), f(0o600, b"ok")),
        (t.join("to-file"), f(rw, b"through a link")),
        (t.join("dup"), f(rw, b"first")),
        (t.join("says-dir"), d(0o755)),
        (t.join("says-file"), f(rw, READ_AS_A_FILE)),
    ])
}

fn assert_warnings(stderr: &str) {
    for w in WARNINGS {
        assert_eq!(
            stderr.lines().filter(|l| l.ends_with(w)).count(),
            1,
            "warning {w:?} not printed once:\n{stderr}"
        );
    }
    assert_eq!(
        stderr.lines().filter(|l| l.contains("skipping")).count(),
        WARNINGS.len(),
        "{stderr}"
    );
}

/// A work directory with a precious file outside where the copy goes.
fn work_dir() -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let victim = outside.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let dest = work.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    (work, dest)
}

#[async_test]
async fn a_hostile_listing_writes_only_under_the_destination_and_never_setuid() {
    let (f, server) = hostile(traversal_tree()).await;
    for preserve in [true, false] {
        let (work, dest) = work_dir();
        let before = snapshot(work.path());
        let mut args = vec!["cp", "-r"];
        if preserve {
            args.push("-p");
        }
        let src = on_hostile(&f, "/t");
        args.extend([src.as_str(), dest.to_str().unwrap()]);
        let out = f.run(&args, b"").await;
        out.assert_success();
        assert_warnings(&out.stderr);

        let after = snapshot(work.path());
        assert_eq!(
            outside(&after, &dest),
            outside(&before, &dest),
            "-p {preserve}: something outside the destination changed"
        );
        let t = dest.join("t");
        let mut copied = after.clone();
        copied.retain(|p, _| p.starts_with(&t) && p != &t);
        assert_eq!(copied, expected_tree(&t, preserve), "-p {preserve}");
        assert_eq!(std::fs::metadata(&t).unwrap().mode() & 0o7777, 0o755);
    }
    // The client never asked for a refused name.
    for line in server.log() {
        assert!(
            !["..", "outside", "/t/sub/inner", "\0"]
                .iter()
                .any(|n| line.contains(n))
                && !line.ends_with("/t/"),
            "asked for a refused name: {line:?}"
        );
    }
}

#[async_test]
async fn links_already_in_the_destination_tree_are_not_written_through() {
    let (f, _server) = hostile(traversal_tree()).await;
    let (work, dest) = work_dir();
    // Links left in the destination by something else (another tool's
    // copy from the same instance, say), pointing out of it.
    let t = dest.join("t");
    std::fs::create_dir(&t).unwrap();
    let outside_dir = work.path().join("outside");
    std::os::unix::fs::symlink(&outside_dir, t.join("sub")).unwrap();
    std::os::unix::fs::symlink(outside_dir.join("victim"), t.join("plain.txt")).unwrap();
    let before = snapshot(work.path());
    let out = f
        .run(
            &["cp", "-r", &on_hostile(&f, "/t"), dest.to_str().unwrap()],
            b"",
        )
        .await;
    out.assert_success();
    for (src, link) in [("/t/plain.txt", "plain.txt"), ("/t/sub", "sub")] {
        let w = format!(
            "skipping {src}: its destination {} is a symbolic link, which a recursive copy does not write through",
            t.join(link).display()
        );
        assert!(out.stderr.contains(&w), "{w}\n{}", out.stderr);
    }
    let after = snapshot(work.path());
    assert_eq!(outside(&after, &t), outside(&before, &t));
    assert_eq!(after.get(&t.join("sub")), before.get(&t.join("sub")));
    assert_eq!(
        after.get(&t.join("plain.txt")),
        before.get(&t.join("plain.txt"))
    );
    assert_eq!(std::fs::read(t.join("dup")).unwrap(), b"first");
}

#[async_test]
async fn names_from_a_hostile_instance_stay_under_the_destination_on_another_instance() {
    let (f, _server) = hostile(traversal_tree()).await;
    // The real sshd is this machine: the second instance's files are the
    // test's own.
    let (work, dest) = work_dir();
    let before = snapshot(work.path());
    let out = f
        .run(
            &[
                "cp",
                "-r",
                "-p",
                &on_hostile(&f, "/t"),
                &format!("{}:{}", f.target(), dest.display()),
            ],
            b"",
        )
        .await;
    out.assert_success();
    assert_warnings(&out.stderr);
    let after = snapshot(work.path());
    assert_eq!(outside(&after, &dest), outside(&before, &dest));
    let t = dest.join("t");
    let mut copied = after.clone();
    copied.retain(|p, _| p.starts_with(&t) && p != &t);
    assert_eq!(copied, expected_tree(&t, true));
}

#[async_test]
async fn a_loop_or_a_tree_without_end_stops_at_the_depth_cap() {
    let mut tree = Tree {
        endless: Some("/deep".into()),
        loop_name: Some("loop".into()),
        ..Tree::default()
    };
    // A loop of links that the listing passes off as a directory.
    tree.dir("/lying", DIR | 0o755, &[("loop", DIR | 0o755)]);
    let (f, _server) = hostile(tree).await;
    for (src, step) in [("/deep", "d"), ("/lying", "loop")] {
        let work = tempfile::tempdir().unwrap();
        let dest = work.path().join("out");
        let out = f
            .run(
                &["cp", "-r", &on_hostile(&f, src), dest.to_str().unwrap()],
                b"",
            )
            .await;
        out.assert_status(1);
        // (/deep/d/d/… 129 levels down, cut in the middle.)
        let stopped_at = format!("{src}/{step}/…/{step}/{step}/{step}");
        out.assert_stderr_contains(format!(
                "cannot copy {src}: more than 128 levels of directories below it (a loop, or a server that makes them up without end); the copy stopped at {stopped_at}"
            ));
        // 128 levels were made, and no more.
        let deepest = dest.join(vec![step; 128].join("/"));
        assert!(deepest.is_dir(), "{}", deepest.display());
        assert!(!deepest.join(step).exists());
    }
}

#[async_test]
async fn an_upload_sets_the_mode_on_the_open_handle_without_setuid() {
    let mut tree = Tree::default();
    tree.dir("/up", DIR | 0o755, &[]);
    let (f, server) = hostile(tree).await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("suid.sh");
    std::fs::write(&src, b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o6755)).unwrap();
    let out = f
        .run(
            &["cp", "-p", src.to_str().unwrap(), &on_hostile(&f, "/up")],
            b"",
        )
        .await;
    out.assert_success();
    assert_eq!(
        server.written.lock().unwrap().get("/up/suid.sh").cloned(),
        Some(b"#!/bin/sh\n".to_vec())
    );
    let log = server.log();
    let temp = log
        .iter()
        .find_map(|l| l.strip_prefix("open "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("no open: {log:?}"))
        .to_owned();
    assert!(
        log.contains(&format!("open {temp} mode=755")),
        "created with setuid/setgid: {log:?}"
    );
    assert!(
        log.contains(&format!("fsetstat {temp} mode=755")),
        "the mode was not set on the handle: {log:?}"
    );
    assert!(
        !log.iter().any(|l| l.starts_with("setstat")),
        "set by path: {log:?}"
    );
}

#[async_test]
async fn a_remote_name_cannot_drive_the_terminal_through_the_progress_bar() {
    let name = "\x1b]0;PWNED\x07title\u{202E}txt.exe";
    let mut tree = Tree {
        gated: Some(format!("/slow/{name}")),
        ..Tree::default()
    };
    tree.dir("/slow", DIR | 0o755, &[(name, REG | 0o644)]);
    tree.file(&format!("/slow/{name}"), 0o644, &vec![7u8; 4 << 20]);
    let (f, server) = hostile(tree).await;
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("dest");
    let pane = crate::interactive::Pane::start(
        &f,
        &format!("cp -r {} {}", on_hostile(&f, "/slow"), dest.display()),
    );
    // The first read is answered, the rest wait: the bar is up, mid-copy.
    pane.wait_for("ETA").await;
    let screen = pane.screen();
    assert!(
        screen.contains("]0;PWNEDtitletxt.exe"),
        "the name, cleaned, is not shown: {screen}"
    );
    assert!(
        !pane.title().contains("PWNED"),
        "the remote name set the terminal's title"
    );
    server.open_gate();
    assert_eq!(
        pane.status(Duration::from_secs(60)).await,
        0,
        "{}",
        pane.screen()
    );
    assert_eq!(std::fs::metadata(dest.join(name)).unwrap().len(), 4 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_glob_takes_only_sound_names_from_a_hostile_listing() {
    let mut tree = Tree::default();
    tree.dir(
        "/g",
        DIR | 0o755,
        &[
            ("../../outside/victim.gz", REG | 0o644),
            ("sub/inner.gz", REG | 0o644),
            ("nul\0byte.gz", REG | 0o644),
            ("ok.gz", REG | 0o644),
            ("twice.gz", REG | 0o644),
            ("twice.gz", REG | 0o644),
            ("loop.gz", LNK | 0o777),
            ("dir.gz", DIR | 0o755),
            ("..", DIR | 0o755),
        ],
    );
    for name in [
        "/g/../../outside/victim.gz",
        "/g/sub/inner.gz",
        "/g/nul\0byte.gz",
    ] {
        tree.file(name, 0o644, b"PWNED");
    }
    tree.file("/g/ok.gz", 0o644, b"ok");
    tree.file("/g/twice.gz", 0o644, b"first");
    tree.nodes.insert(
        "/g/loop.gz".into(),
        Node::Link(Some(Box::new(Node::Dir {
            mode: DIR | 0o755,
            list: vec![],
        }))),
    );
    tree.dir("/g/dir.gz", DIR | 0o755, &[]);
    let (f, server) = hostile(tree).await;
    let (work, dest) = work_dir();
    let before = snapshot(work.path());
    let out = f
        .run(
            &["cp", &on_hostile(&f, "/g/*.gz"), dest.to_str().unwrap()],
            b"",
        )
        .await;
    out.assert_status(0);
    // A name with '/' in it is no name `*` matches; the rest are said.
    for w in [
        "skipping \"nulbyte.gz\" listed in /g: a name with a NUL byte in it, a suspect name that could write outside the destination",
        "skipping \"twice.gz\" listed in /g: listed twice",
        "skipping /g/loop.gz: a symbolic link to a directory, which a pattern does not follow",
        "skipping /g/dir.gz: a directory (use -r)",
    ] {
        assert_eq!(
            out.stderr.lines().filter(|l| l.ends_with(w)).count(),
            1,
            "{w:?} not said once:\n{}",
            out.stderr
        );
    }
    let after = snapshot(work.path());
    assert_eq!(outside(&after, &dest), outside(&before, &dest));
    let mut copied = after;
    copied.retain(|p, _| p.starts_with(&dest) && p != &dest);
    assert_eq!(
        copied,
        BTreeMap::from([
            (dest.join("ok.gz"), ('f', 0o644, b"ok".to_vec())),
            (dest.join("twice.gz"), ('f', 0o644, b"first".to_vec())),
        ])
    );
    // The client never asked for a refused name.
    for line in server.log() {
        assert!(
            !["outside", "sub/inner", "\0"]
                .iter()
                .any(|n| line.contains(n)),
            "asked for a refused name: {line:?}"
        );
    }
}
