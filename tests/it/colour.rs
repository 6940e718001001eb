//! Colour on a real terminal: every command colours there by default, and
//! none does with `NO_COLOR` set or `--color never` (before or after the
//! subcommand's name).

use crate::support::*;

/// `eic-ssh args…` on a pseudo-terminal (util-linux `script`): stdout and
/// stderr are the terminal, and come back as the terminal showed them.
pub(crate) async fn on_a_terminal(f: &Fixture, env: &[(&str, &str)], args: &[&str]) -> Output {
    let line = shell_words::join(
        std::iter::once(env!("CARGO_BIN_EXE_eic-ssh")).chain(args.iter().copied()),
    );
    let mut cmd = f.program("script");
    cmd.env("TERM", "xterm-256color");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(["-qfec", &line, "/dev/null"]);
    f.run_cmd(cmd, &[], b"").await
}

/// Whether `text` holds an SGR sequence (`ESC [ 1;31 m`): colour or
/// style, not the erasing of the progress line.
fn has_colour(text: &str) -> bool {
    text.split("\x1b[").skip(1).any(|rest| {
        let params = rest
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(rest.len());
        rest[params..].starts_with('m')
    })
}

#[async_test]
async fn every_command_honours_no_color_and_color_never_on_a_terminal() {
    let f = Fixture::new().await;
    let target = f.target();
    // Commands that colour on a terminal, each a run that succeeds.
    let coloured: &[&[&str]] = &[
        &["exec", &target, "--", "echo", "hi"],
        &["doctor", INSTANCE, "--offline"],
        &["-v", &target, "--", "true"],
        &["--help"],
    ];
    for args in coloured {
        let out = on_a_terminal(&f, &[], args).await;
        assert_eq!(out.status, Some(0), "{args:?}: {}", out.stdout_str());
        assert!(
            has_colour(&out.stdout_str()),
            "{args:?} shows no colour on a terminal: {:?}",
            out.stdout_str()
        );
        let (sub, rest) = args.split_first().unwrap();
        let never_after: Vec<&str> = [*sub, "--color", "never"]
            .into_iter()
            .chain(rest.iter().copied())
            .collect();
        let never_before: Vec<&str> = ["--color=never"]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        for (env, args) in [
            (&[("NO_COLOR", "1")][..], args.to_vec()),
            (&[][..], never_after),
            (&[][..], never_before),
        ] {
            let out = on_a_terminal(&f, env, &args).await;
            assert_eq!(out.status, Some(0), "{args:?}: {}", out.stdout_str());
            assert!(
                !has_colour(&out.stdout_str()),
                "{args:?} {env:?} coloured: {:?}",
                out.stdout_str()
            );
        }
    }
}

/// The picker draws in colour on a terminal, and plainly with `--color
/// never` (`NO_COLOR` decides `auto` as for everything else).
#[async_test]
async fn the_picker_honours_color_never() {
    let mut world = eic_sim::World::demo();
    world.instances[1].state = "running".into();
    let f = Fixture::with_world(world).await;
    for (args, coloured) in [
        ("", true),
        ("--color never", false),
        ("--color=always", true),
    ] {
        let pane = crate::interactive::Pane::start(&f, args);
        pane.wait_for(STOPPED).await;
        let screen = pane.screen_with_styles();
        assert_eq!(has_colour(&screen), coloured, "{args:?}: {screen:?}");
        pane.keys(&["Escape"]);
        assert_eq!(pane.status(std::time::Duration::from_secs(10)).await, 130);
    }
}
