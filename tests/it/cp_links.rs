//! `cp` and symbolic links that another user planted: the rule of
//! `fs.protected_symlinks`, applied on both sides.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::cp::{cp, remote, temporaries};
use crate::support::*;

#[async_test]
async fn another_users_link_in_a_sticky_directory_is_not_written_through() {
    const NOBODY: u32 = 65534;
    let f = Fixture::new().await;
    let work = tempfile::tempdir().unwrap();
    let me = std::fs::metadata(work.path()).unwrap().uid();
    let probe = work.path().join("probe");
    std::os::unix::fs::symlink("x", &probe).unwrap();
    if std::os::unix::fs::lchown(&probe, Some(NOBODY), None).is_err() {
        eprintln!("skipped: giving a link to another user needs root");
        return;
    }
    let src = work.path().join("new.txt");
    std::fs::write(&src, b"new bytes").unwrap();
    // (link owner, directory owner, sticky, followed), as fs.protected_symlinks.
    for (i, (link_owner, dir_owner, sticky, followed)) in [
        (NOBODY, me, true, false),
        (me, me, true, true),
        (NOBODY, NOBODY, true, true),
        (NOBODY, me, false, true),
    ]
    .into_iter()
    .enumerate()
    {
        for upload in [true, false] {
            let case = format!("case {i}, upload {upload}");
            let dir = work.path().join(format!("dir-{i}-{upload}"));
            std::fs::create_dir(&dir).unwrap();
            let dir_mode = if sticky { 0o1777 } else { 0o777 };
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(dir_mode)).unwrap();
            std::os::unix::fs::lchown(&dir, Some(dir_owner), None).unwrap();
            let target = work.path().join(format!("target-{i}-{upload}"));
            std::fs::write(&target, b"old").unwrap();
            let link = dir.join("link");
            std::os::unix::fs::symlink(&target, &link).unwrap();
            std::os::unix::fs::lchown(&link, Some(link_owner), None).unwrap();

            let (arg_src, arg_dst) = if upload {
                (src.display().to_string(), remote(&f, &link))
            } else {
                (remote(&f, &src), link.display().to_string())
            };
            let out = cp(&f, &[&arg_src, &arg_dst]).await;
            if followed {
                assert_eq!(out.status, Some(0), "{case}: {}", out.stderr);
                assert_eq!(std::fs::read(&target).unwrap(), b"new bytes", "{case}");
            } else {
                assert_eq!(out.status, Some(1), "{case}: {}", out.stderr);
                let why = format!(
                    "cannot copy {}: a symbolic link owned by uid {NOBODY}, in {}, a sticky world-writable directory owned by uid {me}; written through, it would put the file wherever that user chose, so it is not followed (the rule of fs.protected_symlinks: you are uid {me}); remove the link or copy to the file it names",
                    link.display(),
                    dir.display()
                );
                assert!(out.stderr.contains(&why), "{case}: {}", out.stderr);
                assert_eq!(std::fs::read(&target).unwrap(), b"old", "{case}");
            }
            assert_eq!(std::fs::read_link(&link).unwrap(), target, "{case}");
            assert!(temporaries(work.path()).is_empty(), "{case}");
        }
    }
    // Another user's link on the way, not the last: sticky/hop -> real/,
    // with real/last -> target a link of one's own. Resolving the whole
    // path at once would follow hop unchecked.
    for upload in [true, false] {
        let case = format!("a link on the way, upload {upload}");
        let sticky = work.path().join(format!("sticky-{upload}"));
        std::fs::create_dir(&sticky).unwrap();
        std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let real = work.path().join(format!("real-{upload}"));
        std::fs::create_dir(&real).unwrap();
        let target = work.path().join(format!("far-{upload}"));
        std::fs::write(&target, b"old").unwrap();
        std::os::unix::fs::symlink(&target, real.join("last")).unwrap();
        let hop = sticky.join("hop");
        std::os::unix::fs::symlink(&real, &hop).unwrap();
        std::os::unix::fs::lchown(&hop, Some(NOBODY), None).unwrap();
        let dest = hop.join("last");
        let (arg_src, arg_dst) = if upload {
            (src.display().to_string(), remote(&f, &dest))
        } else {
            (remote(&f, &src), dest.display().to_string())
        };
        let out = cp(&f, &[&arg_src, &arg_dst]).await;
        assert_eq!(out.status, Some(1), "{case}: {}", out.stderr);
        let why = format!(
            "cannot copy {}: a symbolic link owned by uid {NOBODY}, in {}, a sticky world-writable directory owned by uid {me}",
            dest.display(),
            sticky.display()
        );
        assert!(out.stderr.contains(&why), "{case}: {}", out.stderr);
        assert_eq!(std::fs::read(&target).unwrap(), b"old", "{case}");
        assert!(temporaries(work.path()).is_empty(), "{case}");
    }
}
