//! `eic-ssh cp` against the real sshd's SFTP server. The instance is this
//! machine, so a remote path is also a local one the test can check.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::support::*;

fn sha256_file(p: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(p).unwrap()).to_vec()
}

fn random_file(p: &Path, n: usize) {
    let mut data = vec![0u8; n];
    rand::fill(&mut data[..]);
    std::fs::write(p, data).unwrap();
}

/// Every entry under `root`: directories as `None`, files as their bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if p.is_dir() {
                out.insert(rel, None);
                stack.push(p);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// Names of leftover temporaries under `dir`.
pub(crate) fn temporaries(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".eic-ssh-"))
        .collect()
}

/// `eic-ssh cp ARGS`: a debug build moves tens of megabytes slowly, so
/// this allows longer than [`Fixture::run`] does.
pub(crate) async fn cp(f: &Fixture, args: &[&str]) -> Output {
    let out = tokio::time::timeout(
        Duration::from_secs(300),
        f.command()
            .arg("cp")
            .args(args)
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("cp {args:?} did not finish in time"))
    .unwrap();
    Output {
        status: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `eic-ssh cp SRC DST` in the background, returned once its copy has begun
/// (a temporary exists under `dir`).
async fn cp_begun(f: &Fixture, src: &str, dst: &str, dir: &Path) -> tokio::process::Child {
    let child = f
        .command()
        .args(["cp", src, dst])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while temporaries(dir).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the copy never began"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child
}

pub(crate) fn remote(f: &Fixture, path: &Path) -> String {
    format!("{}:{}", f.target(), path.display())
}

#[async_test]
async fn fifty_megabytes_up_and_down_are_byte_identical() {
    let f = Fixture::new().await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("big.bin");
    random_file(&src, 50 * 1024 * 1024);
    let remote_dir = work.path().join("instance");
    std::fs::create_dir(&remote_dir).unwrap();
    let on_instance = remote_dir.join("big.bin");

    let out = cp(&f, &[src.to_str().unwrap(), &remote(&f, &remote_dir)]).await;
    out.assert_success();
    assert_eq!(sha256_file(&on_instance), sha256_file(&src));

    let back = work.path().join("back.bin");
    let out = cp(&f, &[&remote(&f, &on_instance), back.to_str().unwrap()]).await;
    out.assert_success();
    assert_eq!(sha256_file(&back), sha256_file(&src));
    // Not a terminal: no progress bars, no line per file.
    out.assert_stderr_lacks("ETA");
    out.assert_stderr_lacks("100%");
    assert!(
        temporaries(work.path()).is_empty(),
        "{:?}",
        temporaries(work.path())
    );

    // An existing destination is replaced whole.
    std::fs::write(&back, b"old").unwrap();
    let out = cp(&f, &[&remote(&f, &on_instance), back.to_str().unwrap()]).await;
    out.assert_success();
    assert_eq!(sha256_file(&back), sha256_file(&src));
}

#[async_test]
async fn a_tree_with_empty_directories_and_odd_names_round_trips() {
    let f = Fixture::new().await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src tree");
    for d in [
        "empty",
        "a dir/nested/deeper",
        "a dir/also empty",
        "-dash dir",
    ] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    for (name, size) in [
        ("plain.txt", 10),
        ("sp ace & quote's \"x\".txt", 1000),
        ("a dir/ünïcødé ✓", 70_000),
        ("a dir/nested/deeper/new\nline", 5),
        ("a dir/nested/star*?[x]", 300_000),
        ("-dash dir/-rf", 0),
        ("a dir/back\\slash;$(id)", 42),
    ] {
        random_file(&src.join(name), size);
    }
    let instance = work.path().join("instance");
    std::fs::create_dir(&instance).unwrap();

    let out = cp(&f, &["-r", src.to_str().unwrap(), &remote(&f, &instance)]).await;
    out.assert_success();
    assert_eq!(tree(&instance.join("src tree")), tree(&src));

    // Down again, to a new name: the directory becomes it, as in scp.
    let down = work.path().join("down");
    let out = f
        .run(
            &[
                "cp",
                "-r",
                &remote(&f, &instance.join("src tree")),
                down.to_str().unwrap(),
            ],
            b"",
        )
        .await;
    out.assert_success();
    assert_eq!(tree(&down), tree(&src));
    assert!(temporaries(work.path()).is_empty());

    // Without -r a directory is refused, naming it, and nothing is copied.
    let other = work.path().join("other");
    let out = cp(&f, &[src.to_str().unwrap(), &remote(&f, &other)]).await;
    out.assert_status(1);
    out.assert_stderr_contains("is a directory (use -r)");
    assert!(!other.exists());
}

#[async_test]
async fn dash_p_keeps_modes_and_times() {
    let f = Fixture::new().await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("keep.sh");
    random_file(&src, 4096);
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o751)).unwrap();
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let times = std::fs::FileTimes::new()
        .set_modified(old)
        .set_accessed(old);
    std::fs::File::options()
        .write(true)
        .open(&src)
        .unwrap()
        .set_times(times)
        .unwrap();
    let instance = work.path().join("instance");
    std::fs::create_dir(&instance).unwrap();

    let out = cp(&f, &["-p", src.to_str().unwrap(), &remote(&f, &instance)]).await;
    out.assert_success();
    let m = std::fs::metadata(instance.join("keep.sh")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o751);
    assert_eq!(m.mtime(), 1_000_000_000);
    assert_eq!(m.atime(), 1_000_000_000);

    // Down with -p as well; without -p the time is the copy's.
    let back = work.path().join("back.sh");
    let out = f
        .run(
            &[
                "cp",
                "-p",
                &remote(&f, &instance.join("keep.sh")),
                back.to_str().unwrap(),
            ],
            b"",
        )
        .await;
    out.assert_success();
    let m = std::fs::metadata(&back).unwrap();
    assert_eq!((m.mode() & 0o7777, m.mtime()), (0o751, 1_000_000_000));
    let fresh = work.path().join("fresh.sh");
    let out = f
        .run(
            &[
                "cp",
                &remote(&f, &instance.join("keep.sh")),
                fresh.to_str().unwrap(),
            ],
            b"",
        )
        .await;
    out.assert_success();
    assert_ne!(std::fs::metadata(&fresh).unwrap().mtime(), 1_000_000_000);
}

#[async_test]
async fn a_missing_source_is_named_and_changes_nothing() {
    let f = Fixture::new().await;
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("dest.txt");
    std::fs::write(&dest, b"as it was").unwrap();
    let missing = work.path().join("nope.txt");
    let out = cp(&f, &[&remote(&f, &missing), dest.to_str().unwrap()]).await;
    out.assert_status(1);
    assert!(
        out.stderr
            .contains(&format!("cannot copy {}", remote(&f, &missing))),
        "{}",
        out.stderr
    );
    out.assert_stderr_contains("no such file");
    assert_eq!(std::fs::read(&dest).unwrap(), b"as it was");
    // A bad target is a usage error before any network call.
    let out = cp(&f, &["i-0123:/x", "y"]).await;
    out.assert_status(2);
    out.assert_stderr_contains("'i-0123'");
}

#[async_test]
async fn a_download_cut_short_leaves_no_file_under_the_destination_name() {
    let f = Fixture::new().await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("big.bin");
    // What the bytes are does not matter here, only that there are many.
    std::fs::write(&src, vec![7u8; 50 * 1024 * 1024]).unwrap();
    let down = work.path().join("down");
    std::fs::create_dir(&down).unwrap();
    let dest = down.join("big.bin");

    // An error close, and a normal close that comes too early: both are
    // failures that say how many bytes got through.
    for (code, reason) in [(1011, "simulated endpoint failure"), (1000, "")] {
        // Once the download has begun (its temporary exists), stall the
        // tunnel and close it.
        let child = cp_begun(&f, &remote(&f, &src), dest.to_str().unwrap(), &down).await;
        f.sim.freeze_tunnels(true);
        f.sim.close_tunnels(code, reason);
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("cp ends")
            .unwrap();
        f.sim.freeze_tunnels(false);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{code}: {stderr}");
        assert!(stderr.contains(reason), "{stderr}");
        assert!(
            stderr.contains("bytes received") && stderr.contains("bytes sent"),
            "{code}: {stderr}"
        );
        assert!(stderr.contains("the destination is as it was"), "{stderr}");
        assert!(!dest.exists(), "a file under the destination name");
        assert!(temporaries(&down).is_empty(), "{:?}", temporaries(&down));
    }
}

#[async_test]
async fn remote_to_remote_goes_through_here_and_several_sources_need_a_directory() {
    let f = Fixture::new().await;
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (work.path().join("a.bin"), work.path().join("b.bin"));
    random_file(&a, 600_000);
    random_file(&b, 3);
    let into = work.path().join("into");
    std::fs::create_dir(&into).unwrap();
    // Two remote sources into a remote directory, all on the instance.
    let out = cp(&f, &[&remote(&f, &a), &remote(&f, &b), &remote(&f, &into)]).await;
    out.assert_success();
    assert_eq!(sha256_file(&into.join("a.bin")), sha256_file(&a));
    assert_eq!(sha256_file(&into.join("b.bin")), sha256_file(&b));
    // Several sources into something that is not a directory: refused.
    let not_dir = work.path().join("file");
    std::fs::write(&not_dir, b"keep").unwrap();
    let out = cp(
        &f,
        &[
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            &remote(&f, &not_dir),
        ],
    )
    .await;
    out.assert_status(1);
    out.assert_stderr_contains("not a directory");
    assert_eq!(std::fs::read(&not_dir).unwrap(), b"keep");
}

#[async_test]
async fn a_tag_target_and_a_home_relative_path_work_as_in_scp() {
    let f = Fixture::new().await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("by-tag.txt");
    std::fs::write(&src, b"by tag\n").unwrap();
    let instance = work.path().join("instance");
    std::fs::create_dir(&instance).unwrap();
    // `tag:Role=web` is the instance; the path starts after the value.
    let dest = format!("{}@tag:Role=web:{}", f.user(), instance.display());
    let out = cp(&f, &[src.to_str().unwrap(), &dest]).await;
    out.assert_success();
    assert_eq!(
        std::fs::read(instance.join("by-tag.txt")).unwrap(),
        b"by tag\n"
    );

    // `~/` is where SFTP starts, the remote user's home directory (the
    // test sshd's own, not the home of whoever runs the tests).
    cp(
        &f,
        &[
            src.to_str().unwrap(),
            &format!("{}:~/by-tag.txt", f.target()),
        ],
    )
    .await
    .assert_success();
    assert_eq!(
        std::fs::read(f.sshd.sftp_home().join("by-tag.txt")).unwrap(),
        b"by tag\n"
    );
}

#[async_test]
async fn an_existing_file_keeps_its_mode_and_a_link_is_written_through() {
    let f = Fixture::new().await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("new.env");
    std::fs::write(&src, b"new secret\n").unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;

    // Up and down: a 0600 file stays 0600 although the source is 0644.
    let up = work.path().join("up.env");
    let down = work.path().join("down.env");
    for (dest, arg_src, arg_dst) in [
        (&up, src.display().to_string(), remote(&f, &up)),
        (&down, remote(&f, &src), down.display().to_string()),
    ] {
        std::fs::write(dest, b"old").unwrap();
        std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = cp(&f, &[&arg_src, &arg_dst]).await;
        out.assert_success();
        assert_eq!(std::fs::read(dest).unwrap(), b"new secret\n");
        assert_eq!(mode(dest), 0o600, "{}", dest.display());
    }

    // A symbolic link stays one; the file it names gets the bytes.
    for remote_side in [true, false] {
        let real = work.path().join(format!("real-{remote_side}"));
        std::fs::write(&real, b"old").unwrap();
        let link = work.path().join(format!("link-{remote_side}"));
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let (arg_src, arg_dst) = if remote_side {
            (src.display().to_string(), remote(&f, &link))
        } else {
            (remote(&f, &src), link.display().to_string())
        };
        let out = cp(&f, &[&arg_src, &arg_dst]).await;
        out.assert_success();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&real).unwrap(), b"new secret\n");
    }
    assert!(
        temporaries(work.path()).is_empty(),
        "{:?}",
        temporaries(work.path())
    );
}

#[async_test]
async fn ctrl_c_leaves_no_temporary_on_either_side() {
    let f = Fixture::new().await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("big.bin");
    std::fs::write(&src, vec![7u8; 50 * 1024 * 1024]).unwrap();
    for upload in [true, false] {
        let into = work.path().join(format!("into-{upload}"));
        std::fs::create_dir(&into).unwrap();
        let dest = into.join("big.bin");
        let (arg_src, arg_dst) = if upload {
            (src.display().to_string(), remote(&f, &dest))
        } else {
            (remote(&f, &src), dest.display().to_string())
        };
        let child = cp_begun(&f, &arg_src, &arg_dst, &into).await;
        send_signal(child.id().unwrap(), "-INT");
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("cp ends")
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "upload {upload}: {stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        assert!(
            !dest.exists(),
            "upload {upload}: a file under the destination name"
        );
        assert!(
            temporaries(&into).is_empty(),
            "upload {upload}: {:?}",
            temporaries(&into)
        );
    }
}

#[async_test]
async fn a_dangling_link_is_skipped_and_a_long_name_copies() {
    let f = Fixture::new().await;
    let work = tempfile::tempdir().unwrap();
    let tree_root = work.path().join("tree");
    std::fs::create_dir(&tree_root).unwrap();
    // 250 bytes: legal, but too long for a temporary name that adds to it.
    let long = "n".repeat(250);
    std::fs::write(tree_root.join(&long), b"long").unwrap();
    std::os::unix::fs::symlink(work.path().join("missing"), tree_root.join("dangling")).unwrap();
    let instance = work.path().join("instance");
    std::fs::create_dir(&instance).unwrap();

    let out = cp(
        &f,
        &["-r", tree_root.to_str().unwrap(), &remote(&f, &instance)],
    )
    .await;
    out.assert_success();
    out.assert_stderr_contains("skipping")
        .assert_stderr_contains("dangling");
    assert_eq!(
        std::fs::read(instance.join("tree").join(&long)).unwrap(),
        b"long"
    );
    assert!(!instance.join("tree").join("dangling").exists());

    let back = work.path().join("back");
    std::fs::create_dir(&back).unwrap();
    let out = cp(
        &f,
        &[&remote(&f, &tree_root.join(&long)), back.to_str().unwrap()],
    )
    .await;
    out.assert_success();
    assert_eq!(std::fs::read(back.join(&long)).unwrap(), b"long");
}

#[async_test]
async fn dash_p_never_carries_setuid_setgid_or_sticky() {
    let f = Fixture::new().await;
    let work = tempfile::tempdir().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
    let tree_root = work.path().join("tree");
    std::fs::create_dir(&tree_root).unwrap();
    let suid = tree_root.join("suid.sh");
    std::fs::write(&suid, b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o6755)).unwrap();
    std::fs::set_permissions(&tree_root, std::fs::Permissions::from_mode(0o3775)).unwrap();

    // Up (the instance is this machine): a file and a directory.
    let instance = work.path().join("instance");
    std::fs::create_dir(&instance).unwrap();
    let out = cp(
        &f,
        &[
            "-r",
            "-p",
            tree_root.to_str().unwrap(),
            &remote(&f, &instance),
        ],
    )
    .await;
    out.assert_success();
    assert_eq!(mode(&instance.join("tree")), 0o775);
    assert_eq!(mode(&instance.join("tree/suid.sh")), 0o755);

    // Down.
    let back = work.path().join("back");
    let out = cp(
        &f,
        &["-r", "-p", &remote(&f, &tree_root), back.to_str().unwrap()],
    )
    .await;
    out.assert_success();
    assert_eq!(mode(&back), 0o775);
    assert_eq!(mode(&back.join("suid.sh")), 0o755);
}

#[async_test]
async fn an_error_says_what_went_wrong_once() {
    let f = Fixture::new().await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("a.txt");
    std::fs::write(&src, b"a").unwrap();

    // OpenSSH's sftp-server words each status as its own name.
    let nowhere = work.path().join("no/such/dir/a.txt");
    let out = cp(&f, &[src.to_str().unwrap(), &remote(&f, &nowhere)]).await;
    out.assert_status(1);
    out.assert_stderr_contains(format!(
        "eic-ssh: cannot copy {}: No such file\n",
        nowhere.display()
    ));

    let Some(_locked) = Locked::new(&work.path().join("locked")) else {
        eprintln!("skipped the rest: no way to lock a directory here (chattr)");
        return;
    };
    let into = work.path().join("locked/a.txt");
    // Up, refused by the instance; down, refused here.
    for (from, to) in [
        (src.display().to_string(), remote(&f, &into)),
        (remote(&f, &src), into.display().to_string()),
    ] {
        let named = into.display();
        let out = cp(&f, &[&from, &to]).await;
        out.assert_status(1);
        let line = out
            .stderr
            .lines()
            .find(|l| l.starts_with("eic-ssh: cannot copy"))
            .unwrap_or_else(|| panic!("{}", out.stderr));
        assert!(
            line.ends_with(&format!("{named}: Permission denied"))
                || line.ends_with(&format!("{named}: Operation not permitted")),
            "{line}"
        );
        out.assert_stderr_lacks("os error");
    }
    assert!(!into.exists());
}

#[async_test]
async fn a_remote_glob_is_matched_on_the_instances_listing() {
    let f = Fixture::new().await;
    let work = tempfile::tempdir().unwrap();
    let logs = work.path().join("logs");
    for (name, data) in [
        ("a.gz", &b"a"[..]),
        ("b.gz", b"b"),
        ("c.txt", b"c"),
        (".hidden.gz", b"h"),
        ("star*.gz", b"star"),
        ("old/x.gz", b"x"),
        ("new/x.gz", b"newer x"),
        ("new/y.txt", b"y"),
    ] {
        let path = logs.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    let glob = |pattern: &str| format!("{}:{}/{pattern}", f.target(), logs.display());
    let dest = |name: &str| {
        let d = work.path().join(name);
        std::fs::create_dir(&d).unwrap();
        d
    };
    let names = |d: &Path| {
        let mut n: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };

    // `*` as the shell has it: not a leading dot, not a directory without -r
    // (skipped, said), and a wildcard escaped is itself.
    let d = dest("star");
    let out = cp(&f, &[&glob("*.gz"), d.to_str().unwrap()]).await;
    out.assert_status(0);
    assert_eq!(names(&d), ["a.gz", "b.gz", "star*.gz"]);
    assert_eq!(std::fs::read(d.join("b.gz")).unwrap(), b"b");
    let d = dest("escaped");
    let out = cp(&f, &[&glob("star\\*.gz"), d.to_str().unwrap()]).await;
    out.assert_status(0);
    assert_eq!(names(&d), ["star*.gz"]);
    let d = dest("all");
    let out = cp(&f, &[&glob("*"), d.to_str().unwrap()]).await;
    out.assert_status(0);
    assert_eq!(names(&d), ["a.gz", "b.gz", "c.txt", "star*.gz"]);
    out.assert_stderr_contains(format!(
        "skipping {}/new: a directory (use -r)",
        logs.display()
    ));

    // Classes, several components, -r.
    let d = dest("class");
    let out = cp(&f, &[&glob("[ab].gz"), &glob("n?w/*"), d.to_str().unwrap()]).await;
    out.assert_status(0);
    assert_eq!(names(&d), ["a.gz", "b.gz", "x.gz", "y.txt"]);
    let d = dest("deep");
    let out = cp(&f, &[&glob("*/y.txt"), d.to_str().unwrap()]).await;
    out.assert_status(0);
    assert_eq!(names(&d), ["y.txt"]);
    let d = dest("tree");
    let out = cp(&f, &["-r", &glob("[no]*"), d.to_str().unwrap()]).await;
    out.assert_status(0);
    assert_eq!(names(&d), ["new", "old"]);
    assert_eq!(std::fs::read(d.join("new/x.gz")).unwrap(), b"newer x");

    // Nothing matches: named, as scp does, and nothing copied.
    let d = dest("none");
    let out = cp(&f, &[&glob("*.zip"), d.to_str().unwrap()]).await;
    out.assert_status(1);
    out.assert_stderr_contains(format!(
        "cannot copy {}: no such file or directory",
        glob("*.zip")
    ));
    // Several matches need a directory to go to.
    let file = work.path().join("file");
    std::fs::write(&file, b"keep").unwrap();
    let out = cp(&f, &[&glob("*.gz"), file.to_str().unwrap()]).await;
    out.assert_status(1);
    out.assert_stderr_contains("not a directory");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep");
    // One match is a source like any other: to a new name.
    let one = work.path().join("renamed.txt");
    let out = cp(&f, &[&glob("c.*"), one.to_str().unwrap()]).await;
    out.assert_status(0);
    assert_eq!(std::fs::read(&one).unwrap(), b"c");
}

/// A directory nobody may write into, for as long as it lives: mode 0500,
/// or for root (whom modes do not stop) the immutable attribute; `None`
/// where neither can be had.
struct Locked(PathBuf);

impl Locked {
    fn new(dir: &Path) -> Option<Locked> {
        std::fs::create_dir(dir).unwrap();
        if std::fs::metadata(dir).unwrap().uid() != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500)).unwrap();
            return Some(Locked(dir.to_owned()));
        }
        let locked = std::process::Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        locked.then(|| Locked(dir.to_owned()))
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .output();
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700));
    }
}
