//! Interactive sessions through a real pseudo-terminal (tmux), against the
//! simulator and a real sshd. The screen is read with wrapped lines joined
//! (`capture-pane -J`), and what a test waits for is output only the remote
//! shell can produce (`echo $((6*7))x` shows `42x`; the terminal's echo of
//! the typed line shows `$((6*7))x`), never the prompt, the host name or a
//! pane's width.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// The prompt of the tests' shell.
const PROMPT: &str = "eic-test$ ";

/// A fixture whose instance runs the tests' own shell for a session: bash
/// with none of the machine's start-up files (`--norc --noprofile`), the
/// fixed prompt [`PROMPT`], and no history file; a command runs in the
/// same clean bash. (sshd's ForceCommand runs it through the user's login
/// shell as a command, which the fixture's `SHLVL=1` keeps from reading
/// `~/.bashrc`; SFTP needs the default fixture.)
pub(crate) async fn shell_fixture() -> Fixture {
    Fixture::with_sshd_setup(eic_sim::World::demo(), |sim| {
        let shell = sim.state_dir().join("test-shell");
        std::fs::write(
            &shell,
            format!(
                "#!/bin/sh\n\
                 # The tests' shell: the machine's start-up files, prompt and history stay out.\n\
                 export PS1='{PROMPT}' HISTFILE=\n\
                 if [ -n \"$SSH_ORIGINAL_COMMAND\" ]; then\n\
                 \x20   exec /bin/bash --norc --noprofile -c \"$SSH_ORIGINAL_COMMAND\"\n\
                 fi\n\
                 exec /bin/bash --norc --noprofile -i\n"
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shell, std::fs::Permissions::from_mode(0o755)).unwrap();
        format!("ForceCommand {}\n", shell.display())
    })
    .await
}

/// eic-ssh running in a tmux pane, from a script that records the local
/// terminal settings before and after, and the exit status.
pub(crate) struct Pane {
    socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Pane {
    pub(crate) fn start(f: &Fixture, args: &str) -> Pane {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("tmux.sock");
        let mut script = String::from("#!/bin/sh\n");
        for (k, v) in f.env() {
            script.push_str(&format!(
                "export {}='{}'\n",
                k.to_string_lossy(),
                v.to_string_lossy()
            ));
        }
        let d = dir.path().display();
        script.push_str(&format!(
            "export TERM=xterm-256color LANG=C.UTF-8\nstty -g > {d}/before.tmp && mv {d}/before.tmp {d}/before\n{bin} {args}\necho $? > {d}/status.tmp && mv {d}/status.tmp {d}/status\nstty -g > {d}/after.tmp && mv {d}/after.tmp {d}/after\nsleep 60\n",
            bin = env!("CARGO_BIN_EXE_eic-ssh"),
        ));
        let path = dir.path().join("run.sh");
        std::fs::write(&path, script).unwrap();
        let pane = Pane { socket, dir };
        pane.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "100",
            "-y",
            "30",
            &format!("sh {}", path.display()),
        ]);
        pane
    }

    pub(crate) fn tmux(&self, args: &[&str]) -> String {
        let mut tmux = Command::new("tmux");
        tmux.arg("-S").arg(&self.socket).args(args);
        String::from_utf8_lossy(&stdout_of(tmux, &format!("tmux {args:?}"))).into_owned()
    }

    pub(crate) fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    pub(crate) fn type_line(&self, line: &str) {
        self.keys(&["-l", line]);
        self.keys(&["Enter"]);
    }

    /// The screen and what scrolled off it, wrapped lines joined.
    pub(crate) fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-t", "0", "-S", "-200"])
    }

    /// The screen with wrapped lines joined, as they were printed.
    pub(crate) fn lines(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-t", "0", "-S", "-200"])
    }

    /// The screen with its colours and styles, as escape sequences.
    pub(crate) fn screen_with_styles(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-e", "-t", "0", "-S", "-200"])
    }

    /// The pane's title, as escape sequences (OSC 0/2) may have set it.
    pub(crate) fn title(&self) -> String {
        self.tmux(&["display-message", "-p", "-t", "0", "#{pane_title}"])
    }

    /// Wait (bounded) until the screen shows `text`.
    pub(crate) async fn wait_for(&self, text: &str) {
        self.wait_until(&format!("{text:?} on the screen"), |screen| {
            screen.contains(text)
        })
        .await;
    }

    /// Wait (bounded) until the screen passes `ready`.
    pub(crate) async fn wait_until(&self, what: &str, mut ready: impl FnMut(&str) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether eic-ssh has exited (the script wrote its status).
    pub(crate) fn exited(&self) -> bool {
        self.dir.path().join("status").exists()
    }

    /// eic-ssh is still running.
    #[track_caller]
    fn assert_running(&self) {
        assert!(!self.exited(), "eic-ssh exited; screen:\n{}", self.screen());
    }

    /// Wait (bounded) for eic-ssh's exit status.
    pub(crate) async fn status(&self, within: Duration) -> i32 {
        let path = self.dir.path().join("status");
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(s) = std::fs::read_to_string(&path) {
                return s.trim().parse().unwrap();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "eic-ssh did not exit; screen:\n{}",
                self.screen()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The terminal's settings were restored exactly.
    async fn assert_terminal_restored(&self) {
        let after = self.dir.path().join("after");
        eventually("the script's stty -g after eic-ssh", WAIT, || {
            after.exists()
        })
        .await;
        let before = std::fs::read_to_string(self.dir.path().join("before")).unwrap();
        assert_eq!(
            before,
            std::fs::read_to_string(after).unwrap(),
            "stty -g differs"
        );
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

#[async_test]
async fn a_shell_with_a_real_terminal() {
    let f = shell_fixture().await;
    let pane = Pane::start(&f, &f.target());
    pane.type_line("echo $((6*7))X");
    pane.wait_for("42X").await;
    // The tests' own shell, not the machine's start-up files.
    pane.wait_for(&format!("{PROMPT}echo $((6*7))X")).await;
    pane.type_line("echo term=$TERM lang=$LANG");
    pane.wait_for("term=xterm-256color lang=C.UTF-8").await;
    pane.type_line("echo size=$(stty size)");
    pane.wait_for("size=30 100").await;
    // A resize reaches the remote side when the window changes; ask until
    // it shows (each answer is told apart by its number).
    pane.tmux(&["resize-window", "-t", "0", "-x", "120", "-y", "40"]);
    let mut asked = 0;
    pane.wait_until("the remote side seeing 40 rows of 120", |screen| {
        if screen.contains(&format!("size{asked}=40 120")) {
            return true;
        }
        if asked == 0 || screen.contains(&format!("size{asked}=")) {
            asked += 1;
            pane.type_line(&format!("echo size$(({asked}+0))=$(stty size)"));
        }
        false
    })
    .await;

    // Ctrl-C goes to the remote side, which stops the command there, and
    // the session lives on.
    pane.type_line("echo $((1+1))sleeping; sleep 100");
    pane.wait_for("2sleeping").await;
    pane.keys(&["C-c"]);
    pane.type_line("echo still-$((3+3))");
    pane.wait_for("still-6").await;

    pane.type_line("exit 7");
    assert_eq!(pane.status(WAIT).await, 7);
    pane.assert_terminal_restored().await;
}

#[async_test]
async fn tilde_dot_ends_a_stuck_session() {
    let f = shell_fixture().await;
    let pane = Pane::start(&f, &f.target());
    // Block the remote side hard: it ignores input, and Ctrl-C too.
    pane.type_line("stty -isig; echo $((5+5))stuck; sleep 100");
    pane.wait_for("10stuck").await;
    pane.keys(&["Enter"]);
    pane.keys(&["-l", "~."]);
    // Long before the remote side would end by itself.
    assert_eq!(pane.status(WAIT).await, 255);
    pane.wait_for(&format!("Connection to {INSTANCE} closed."))
        .await;
    pane.assert_terminal_restored().await;
}

/// The one eic-ssh process whose command line holds `marker`.
fn eic_ssh_with(marker: &std::path::Path) -> u32 {
    let pids = pids_with(&marker.display().to_string());
    let ours: Vec<u32> = pids
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with(env!("CARGO_BIN_EXE_eic-ssh").as_bytes()))
        })
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    ours[0]
}

#[async_test]
async fn the_terminal_is_restored_when_the_remote_dies_or_we_are_killed() {
    let f = shell_fixture().await;
    let pane = Pane::start(&f, &f.target());
    pane.type_line("echo $((3+4))ready");
    pane.wait_for("7ready").await;
    pane.type_line("kill -9 $$");
    let status = pane.status(WAIT).await;
    assert!(status == 137 || status == 255, "{status}");
    pane.assert_terminal_restored().await;

    let marker = f.home.tmp().join("kh-sigterm");
    let pane = Pane::start(
        &f,
        &format!("--known-hosts {} {}", marker.display(), f.target()),
    );
    // Only the remote shell prints 42x (the local echo of the typed line,
    // before eic-ssh is even running, shows "6*7"): eic-ssh is running.
    pane.type_line("echo $((6*7))x");
    pane.wait_for("42x").await;
    send_signal(eic_ssh_with(&marker), "-TERM");
    assert_eq!(pane.status(WAIT).await, 143);
    pane.assert_terminal_restored().await;
}

#[async_test]
async fn sigint_and_sigquit_from_another_process_restore_the_terminal() {
    let f = shell_fixture().await;
    for (signal, status) in [("-INT", 130), ("-QUIT", 131)] {
        let marker = f.home.tmp().join(format!("kh{signal}"));
        let pane = Pane::start(
            &f,
            &format!("--known-hosts {} {}", marker.display(), f.target()),
        );
        // Output only the remote shell can produce (the local echo of the
        // typed line shows "6*7"), so eic-ssh is surely in raw mode.
        pane.type_line("echo $((6*7))x");
        pane.wait_for("42x").await;
        send_signal(eic_ssh_with(&marker), signal);
        assert_eq!(pane.status(WAIT).await, status, "{signal}");
        pane.assert_terminal_restored().await;
    }
}

#[async_test]
async fn keepalives_keep_an_idle_session_and_detect_a_dead_tunnel() {
    let f = shell_fixture().await;
    let pane = Pane::start(
        &f,
        &format!("--keepalive-interval 1 --keepalive-count 2 {}", f.target()),
    );
    // Only the remote shell prints 4idle: the session is up.
    pane.type_line("echo $((2+2))idle");
    pane.wait_for("4idle").await;
    pane.assert_running();
    // Idle for twice the interval x count after which an unanswered
    // keepalive ends the session (the idle time is what is tested here,
    // not a wait for something): it is still alive, and answers.
    tokio::time::sleep(Duration::from_secs(4)).await;
    pane.assert_running();
    pane.type_line("echo $((3+3))after-idle");
    pane.wait_for("6after-idle").await;
    pane.assert_running();

    // The tunnel goes silent: a message and 255, within about interval x
    // count (a few seconds; the bound is generous). Without keepalives it
    // would wait for ever on the frozen tunnel.
    f.sim.freeze_tunnels(true);
    assert_eq!(pane.status(Duration::from_secs(15)).await, 255);
    pane.wait_for(&format!("the connection to {INSTANCE} was lost"))
        .await;
    pane.assert_terminal_restored().await;
}

#[async_test]
async fn dash_t_forces_a_pty_for_a_command_and_dash_big_t_disables_it() {
    let f = Fixture::new().await;
    let pane = Pane::start(&f, &format!("-t {} -- 'tty; echo done'", f.target()));
    pane.wait_for("/dev/pts/").await;
    assert_eq!(pane.status(WAIT).await, 0);
    let pane = Pane::start(&f, &format!("-T {} -- 'tty; echo done'", f.target()));
    pane.wait_for("not a tty").await;
    assert_eq!(pane.status(WAIT).await, 0);
    pane.assert_terminal_restored().await;
}

#[async_test]
async fn the_picker_chooses_among_matches_by_typing_and_enter() {
    let f = Fixture::with_world(crate::targets::twins()).await;
    let pane = Pane::start(
        &f,
        &format!("{}@web-1 -- 'echo picked-$((40+2))'", f.user()),
    );
    pane.wait_for("Name tag 'web-1' matches 2 instances").await;
    pane.wait_for(STOPPED).await;
    pane.wait_for(INSTANCE).await;
    pane.wait_for("10.0.1.11").await;
    // Type to filter down to the one with sshd behind it, then Enter.
    pane.keys(&["-l", "abcdef0"]);
    pane.wait_until("the filter leaving only one instance", |screen| {
        !screen.contains(&format!("{STOPPED}  web-1"))
    })
    .await;
    pane.keys(&["Enter"]);
    pane.wait_for("picked-42").await;
    assert_eq!(pane.status(WAIT).await, 0);
    pane.assert_terminal_restored().await;
}

#[async_test]
async fn no_target_on_a_terminal_picks_among_reachable_instances_and_esc_cancels() {
    let f = Fixture::with_world(crate::targets::twins()).await;
    let pane = Pane::start(&f, "");
    pane.wait_for("Connect to which instance?").await;
    pane.wait_for(INSTANCE).await;
    pane.wait_for(STOPPED).await;
    // The instance with no endpoint in its VPC is not offered.
    assert!(!pane.screen().contains(NO_ENDPOINT), "{}", pane.screen());
    pane.keys(&["Escape"]);
    assert_eq!(pane.status(WAIT).await, 130);
    pane.assert_terminal_restored().await;
    f.assert_nothing_pushed_or_opened();
}

#[async_test]
async fn warns_before_the_maximum_duration_and_says_why_the_tunnel_closed() {
    let f = shell_fixture().await;
    // A 30 s tunnel. --warn-before (also EIC_SSH_WARN_BEFORE; default
    // 300,60, i.e. 5 min and 1 min) scales the two warnings down to 15 s
    // and 5 s before the end: the shell has 15 s to come up, which it
    // does in well under one even on a loaded machine.
    let pane = Pane::start(
        &f,
        &format!("--max-tunnel-duration 30 --warn-before 15,5 {}", f.target()),
    );
    // The remote shell answers (what only it can print), then half a
    // command is typed at its prompt: each warning must leave that line,
    // and the cursor, where they are.
    pane.type_line("echo $((40+2))R");
    pane.wait_for("42R\n").await;
    let typed = format!("{PROMPT}echo half-typed");
    pane.keys(&["-l", "echo half-typed"]);
    pane.wait_for(&typed).await;
    let cursor = || {
        pane.tmux(&[
            "display-message",
            "-p",
            "-t",
            "0",
            "#{cursor_x} #{cursor_y}",
        ])
    };
    let before = cursor();
    assert!(
        !pane.screen().contains("the tunnel closes"),
        "the shell took too long to start:\n{}",
        pane.screen()
    );
    for left in ["15 s", "5 s"] {
        pane.wait_for(&format!("eic-ssh: the tunnel closes in {left}: it reaches its maximum duration of 30 s (--max-tunnel-duration)"))
            .await;
        assert_eq!(
            cursor(),
            before,
            "the warning moved the cursor:\n{}",
            pane.screen()
        );
        let screen = pane.screen();
        let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
        let at = lines
            .iter()
            .position(|l| l.ends_with(&typed))
            .unwrap_or_else(|| panic!("the typed line is gone:\n{screen}"));
        // The later warning takes the earlier one's row: one line, never a pile.
        assert!(
            lines[at + 1].starts_with(&format!("eic-ssh: the tunnel closes in {left}")),
            "{screen}"
        );
    }

    assert_eq!(pane.status(WAIT).await, 255);
    pane.wait_for("eic-ssh: the endpoint closed the tunnel at its maximum duration of 30 s")
        .await;
    pane.wait_for("hint: reconnect to carry on; --max-tunnel-duration")
        .await;
    pane.assert_terminal_restored().await;
}

#[async_test]
async fn cp_shows_progress_on_a_terminal_and_none_with_q() {
    let f = Fixture::new().await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("big.bin");
    std::fs::write(&src, vec![1u8; 40 * 1024 * 1024]).unwrap();
    let remote = format!("{}:{}", f.target(), src.display());

    let dest = work.path().join("copy.bin");
    let pane = Pane::start(&f, &format!("cp {remote} {}", dest.display()));
    pane.wait_for("ETA").await;
    assert!(pane.screen().contains("big.bin"), "{}", pane.screen());
    assert_eq!(pane.status(Duration::from_secs(240)).await, 0);
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), 40 * 1024 * 1024);

    // -q: silent throughout, on the same terminal.
    let quiet = work.path().join("quiet.bin");
    let pane = Pane::start(&f, &format!("cp -q {remote} {}", quiet.display()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    while !pane.exited() {
        let screen = pane.screen();
        assert!(!screen.contains("ETA"), "{screen}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "cp -q did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pane.status(Duration::from_secs(1)).await, 0);
    assert_eq!(std::fs::metadata(&quiet).unwrap().len(), 40 * 1024 * 1024);
}

/// Whether `line` is scp's for a file copied: NAME, 100%, its size, a
/// rate and mm:ss.
fn copied_line<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen.lines().find(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words.len() == 5
            && words[0] == name
            && words[1] == "100%"
            && words[3].ends_with("B/s")
            && words[4].len() == 5
            && words[4].as_bytes()[2] == b':'
    })
}

#[async_test]
async fn cp_leaves_a_line_per_file_on_a_terminal() {
    let f = Fixture::new().await;
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("a.bin"), vec![1u8; 3 << 20]).unwrap();
    std::fs::write(tree.join("b.txt"), b"twelve bytes").unwrap();
    let remote = format!("{}:{}", f.target(), tree.display());

    let dest = work.path().join("copy");
    let pane = Pane::start(&f, &format!("cp -r {remote} {}", dest.display()));
    assert_eq!(
        pane.status(Duration::from_secs(120)).await,
        0,
        "{}",
        pane.lines()
    );
    let screen = pane.lines();
    let a = copied_line(&screen, "a.bin").unwrap_or_else(|| panic!("{screen}"));
    assert!(a.contains(" 3.0MB "), "{a}");
    let b = copied_line(&screen, "b.txt").unwrap_or_else(|| panic!("{screen}"));
    assert!(b.contains(" 12B "), "{b}");
    // In the order copied, and nothing of the bars left.
    assert!(screen.find(a) < screen.find(b), "{screen}");
    assert!(
        !screen.contains("ETA") && !screen.contains("total"),
        "{screen}"
    );
    assert_eq!(std::fs::read(dest.join("b.txt")).unwrap(), b"twelve bytes");

    // -q: none.
    let quiet = work.path().join("quiet");
    let pane = Pane::start(&f, &format!("cp -q -r {remote} {}", quiet.display()));
    assert_eq!(
        pane.status(Duration::from_secs(120)).await,
        0,
        "{}",
        pane.lines()
    );
    assert!(!pane.lines().contains("100%"), "{}", pane.lines());
}

#[async_test]
async fn the_progress_line_is_cleared_before_the_host_key_notice() {
    let f = Fixture::new().await;
    let pane = Pane::start(&f, &format!("{} -- echo done-$((6*7))", f.target()));
    assert_eq!(pane.status(WAIT).await, 0, "{}", pane.screen());
    let screen = pane.screen();
    assert!(screen.contains("done-42"), "{screen}");
    let notice = screen
        .lines()
        .find(|l| l.contains("permanently added"))
        .unwrap_or_else(|| panic!("no host-key notice: {screen}"));
    assert!(
        notice.starts_with("eic-ssh: ")
            && !notice.contains("authenticating")
            && !notice.contains('…'),
        "the progress line ran into the notice: {notice:?}"
    );

    // -q: neither progress nor status lines.
    let marker = f.home.tmp().join("kh-quiet");
    let pane = Pane::start(
        &f,
        &format!(
            "-q --known-hosts {} {} -- echo quiet-$((6*7))",
            marker.display(),
            f.target()
        ),
    );
    assert_eq!(pane.status(WAIT).await, 0, "{}", pane.screen());
    let screen = pane.screen();
    assert!(screen.contains("quiet-42"), "{screen}");
    assert!(!screen.contains("eic-ssh:"), "{screen}");
}
