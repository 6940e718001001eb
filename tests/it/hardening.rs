//! The second security review (issue 23), its findings outside `cp`: each
//! test here failed before its fix.

use eic_ssh::sim::{DEMO_INSTANCE_SG, LooseInterface, World};

use crate::support::*;

/// What a terminal acts on: controls (but newlines) and bidirectional
/// controls, which reorder what is displayed.
fn unprintable(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| (c.is_control() && c != '\n') || eic_ssh::term::text::is_bidi_control(c))
        .collect()
}

/// `ls` shows a Name tag, and `restrict`'s plan a network interface's
/// description: anyone's text, shown without C1 controls or bidirectional
/// controls. (XML cannot carry C0 controls such as ESC, so the API never
/// sends them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_text_in_ls_and_restricts_plan_is_cleaned() {
    let mut w = World::demo();
    w.instances[0].tags = vec![("Name".into(), "web-\u{202E}1txt.exe\u{9b}2J".into())];
    w.endpoints[0].preserve_client_ip = false;
    w.loose_interfaces.push(LooseInterface {
        id: "eni-0loose".into(),
        vpc_id: "vpc-1".into(),
        subnet_id: "subnet-1".into(),
        description: "lambda \u{202E}gpj.exe\u{9b}2J\u{2066}x".into(),
        security_group_ids: vec![DEMO_INSTANCE_SG.into()],
    });
    let f = Fixture::with_world(w).await;

    let out = f.run(&["ls"], b"").await;
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    let text = out.stdout_str();
    assert!(text.contains("web-1txt.exe2J"), "{text}");
    assert_eq!(unprintable(&text), Vec::<char>::new(), "{text:?}");

    let out = f
        .run(&["restrict", INSTANCE, "--allow", "203.0.113.0/24"], b"")
        .await;
    let text = out.stdout_str();
    assert!(
        text.contains("eni-0loose (interface: lambda gpj.exe2Jx)"),
        "{text}\n{}",
        out.stderr
    );
    assert_eq!(unprintable(&text), Vec::<char>::new(), "{text:?}");
    assert_eq!(
        unprintable(&out.stderr),
        Vec::<char>::new(),
        "{:?}",
        out.stderr
    );
}
