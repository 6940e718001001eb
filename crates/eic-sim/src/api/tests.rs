use super::instance_connect::{valid_os_user, validate_public_key};
use super::query::paginate;
use super::response::esc;

#[test]
fn paginate_edges() {
    let items = [1, 2, 3];
    assert_eq!(
        paginate(&items, "k", 2, None).unwrap(),
        (vec![1, 2], Some("k.page.2".into()))
    );
    assert_eq!(
        paginate(&items, "k", 2, Some("k.page.2")).unwrap(),
        (vec![3], None)
    );
    assert!(paginate(&items, "k", 2, Some("other.page.2")).is_err());
    assert!(paginate(&items, "k", 2, Some("k.page.9")).is_err());
    let empty: [u8; 0] = [];
    assert_eq!(paginate(&empty, "k", 2, None).unwrap(), (vec![], None));
}

#[test]
fn os_user_validation() {
    let cases = [
        ("ec2-user", true),
        ("root", true),
        ("a", true),
        ("1abc", false),
        ("bad user", false),
        ("", false),
        ("svc$", true),
        ("a$b", false),
    ];
    for (user, valid) in cases {
        assert_eq!(valid_os_user(user), valid, "{user:?}");
    }
    // 32 characters: the last must be one a last character may be.
    let stem = format!("a{}", "b".repeat(30));
    assert!(valid_os_user(&format!("{stem}c")));
    assert!(!valid_os_user(&format!("{stem}.")));
    assert!(!valid_os_user(&format!("{stem}cc")));
}

#[test]
fn public_key_validation() {
    let ed =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test";
    let cases = [
        ("ed25519", ed.to_string(), true),
        ("truncated", "ssh-ed25519 AAAA".to_string(), false),
        ("two lines", format!("{ed}\n{ed}"), false),
    ];
    for (case, key, valid) in cases {
        assert_eq!(validate_public_key(&key).is_ok(), valid, "{case}");
    }
}

#[test]
fn xml_escaping() {
    assert_eq!(esc("a<b>&'\""), "a&lt;b&gt;&amp;'\"");
}
