//! Warnings before the tunnel reaches its maximum duration: one line on
//! stderr at each of the given times before the end, written below the
//! current line with the cursor put back, so a shell or a full-screen
//! program keeps its place.

use std::io::Write;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The service's default (and maximum) tunnel duration.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(3600);

/// Write a warning at each of `before` ahead of `opened + max`, for as long
/// as the returned task lives (abort it when the session ends). Times that
/// are not strictly inside the duration are skipped.
pub fn spawn_warnings(opened: Instant, max: Duration, before: &[Duration]) -> JoinHandle<()> {
    let before = warning_times(max, before);
    tokio::spawn(async move {
        for left in before {
            tokio::time::sleep_until(opened + (max - left)).await;
            let line = format!(
                "eic-ssh: the tunnel closes in {}: it reaches its maximum duration of {} (--max-tunnel-duration)",
                human(left),
                human(max)
            );
            let mut err = std::io::stderr().lock();
            let text = match std::io::IsTerminal::is_terminal(&err) {
                true => below_current_line(&line, crate::term::size().0),
                false => format!("{line}\n"),
            };
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        }
    })
}

/// The times before the end to warn at, earliest warning first; those not
/// strictly inside the duration dropped.
pub fn warning_times(max: Duration, before: &[Duration]) -> Vec<Duration> {
    let mut before: Vec<Duration> = before
        .iter()
        .copied()
        .filter(|b| !b.is_zero() && *b < max)
        .collect();
    before.sort_by(|a, b| b.cmp(a));
    before.dedup();
    before
}

/// `line` on the row under the cursor, which is then put back where it was:
/// a line feed and a move back up make room (scrolling at the bottom row)
/// without losing the cursor's column; then save, move down, clear, write,
/// restore. The line is cut to the width so that it never wraps.
pub fn below_current_line(line: &str, columns: u32) -> String {
    let width = (columns as usize).saturating_sub(1).max(1);
    let shown: String = line.chars().take(width).collect();
    format!("\n\x1b[A\x1b7\x1b[B\r\x1b[2K{shown}\x1b8")
}

/// `5 min`, `1 min`, `90 s`, `3 s`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s >= 60 && s.is_multiple_of(60) {
        true => format!("{} min", s / 60),
        false => format!("{s} s"),
    }
}

/// The times before the end to warn at (`--warn-before`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarnBefore(pub Vec<Duration>);

/// Parse `--warn-before`: seconds before the end, e.g. `300,60`; empty for
/// no warning.
pub fn parse_warn_before(s: &str) -> Result<WarnBefore, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| format!("'{p}' is not a number of seconds"))
        })
        .collect::<Result<_, _>>()
        .map(WarnBefore)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_goes_below_and_the_cursor_comes_back() {
        let out = below_current_line("hello", 80);
        assert_eq!(out, "\n\x1b[A\x1b7\x1b[B\r\x1b[2Khello\x1b8");
        // Never wider than the terminal, so it never wraps and scrolls.
        assert!(
            below_current_line(&"x".repeat(200), 40).contains(&format!("{}\x1b8", "x".repeat(39)))
        );
        assert!(!below_current_line(&"x".repeat(200), 40).contains(&"x".repeat(40)));
    }

    #[test]
    fn five_minutes_then_one_and_only_inside_the_duration() {
        let s = Duration::from_secs;
        assert_eq!(
            warning_times(s(3600), &[s(60), s(300)]),
            vec![s(300), s(60)]
        );
        assert_eq!(warning_times(s(120), &[s(300), s(60)]), vec![s(60)]);
        assert_eq!(
            warning_times(s(3), &[s(2), s(1), s(1), s(0)]),
            vec![s(2), s(1)]
        );
        assert!(warning_times(s(60), &[s(60)]).is_empty());
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(Duration::from_secs(300)), "5 min");
        assert_eq!(human(Duration::from_secs(60)), "1 min");
        assert_eq!(human(Duration::from_secs(90)), "90 s");
        assert_eq!(human(Duration::from_secs(3)), "3 s");
        assert_eq!(
            parse_warn_before("300, 60").unwrap().0,
            vec![Duration::from_secs(300), Duration::from_secs(60)]
        );
        assert!(parse_warn_before("5m").unwrap_err().contains("'5m'"));
    }
}
