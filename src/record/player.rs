//! Playing a recording in the terminal: each output event written as it
//! was recorded, at its time (divided by the speed), with long pauses cut
//! to the idle limit.
//!
//! A recording is text for the terminal, escape sequences included, and
//! `play` writes it as it is: that is what reproduces the session. One made
//! by someone else can drive the terminal as any program could (docs/audit.md
//! says so). What it cannot do is make `play` misbehave: lines are bounded,
//! times are checked, and a pause is never longer than asked for.

use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::cast::{self, Event, Events};

/// The pause a recording gets when neither it nor `--idle-time-limit`
/// gives one: long enough to read, short enough to watch.
pub const DEFAULT_IDLE_LIMIT: f64 = 2.0;
/// The longest line read: an event larger than this is not a terminal's.
const MAX_LINE: u64 = 16 << 20;
/// The longest wait there is (a pause of centuries in a crafted file).
const MAX_WAIT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// When each event is shown, from the start of playback.
#[derive(Debug, Clone)]
pub struct Pacer {
    speed: f64,
    idle_limit: Option<f64>,
    last: f64,
    at: f64,
}

impl Pacer {
    /// `speed` > 0; `idle_limit` caps each pause (before the speed applies).
    pub fn new(speed: f64, idle_limit: Option<f64>) -> Pacer {
        Pacer {
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
            idle_limit: idle_limit.filter(|l| l.is_finite() && *l > 0.0),
            last: 0.0,
            at: 0.0,
        }
    }

    /// The moment, from the start of playback, to show an event recorded
    /// at `t` seconds. Events out of order are shown at once.
    pub fn next(&mut self, t: f64) -> Duration {
        let gap = (t - self.last).max(0.0);
        self.last = self.last.max(t);
        let gap = match self.idle_limit {
            Some(limit) => gap.min(limit),
            None => gap,
        };
        self.at += gap / self.speed;
        Duration::try_from_secs_f64(self.at)
            .unwrap_or(MAX_WAIT)
            .min(MAX_WAIT)
    }
}

/// Play `input` (a whole asciicast file) to `out`. `idle_limit` overrides
/// the file's own; 0 keeps every pause.
pub async fn play<R, W>(
    mut input: R,
    mut out: W,
    speed: f64,
    idle_limit: Option<f64>,
) -> Result<(), String>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let header = read_line(&mut input).await?.ok_or("the file is empty")?;
    let format = cast::parse_header(&header)?;
    let limit = idle_limit
        .or(format.idle_time_limit)
        .unwrap_or(DEFAULT_IDLE_LIMIT);
    let mut pacer = Pacer::new(speed, Some(limit));
    let mut events = Events::new(&format);
    let start = tokio::time::Instant::now();
    let mut n = 1;
    while let Some(line) = read_line(&mut input).await? {
        n += 1;
        let event = events.parse(&line).map_err(|e| format!("line {n}: {e}"))?;
        let Some(event) = event else { continue };
        let at = pacer.next(event.time());
        if let Event::Output(_, text) = event {
            let when = start.checked_add(at).unwrap_or_else(|| start + MAX_WAIT);
            tokio::time::sleep_until(when).await;
            out.write_all(text.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            out.flush().await.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The next line, without its newline; `None` at the end.
async fn read_line<R: AsyncBufRead + Unpin>(input: &mut R) -> Result<Option<String>, String> {
    let mut buf = Vec::new();
    let n = (&mut *input)
        .take(MAX_LINE)
        .read_until(b'\n', &mut buf)
        .await
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') && n as u64 == MAX_LINE {
        return Err(format!("a line is longer than {} MiB", MAX_LINE >> 20));
    }
    String::from_utf8(buf)
        .map(|s| Some(s.trim_end_matches(['\n', '\r']).to_owned()))
        .map_err(|_| "a line is not UTF-8 text".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn pauses_are_capped_then_divided_by_the_speed() {
        let mut p = Pacer::new(2.0, Some(1.0));
        assert_eq!(secs(p.next(0.5)), 0.25);
        // A 10 s pause is cut to 1 s, then halved.
        assert_eq!(secs(p.next(10.5)), 0.75);
        assert_eq!(secs(p.next(10.75)), 0.875);
        // Out of order: at once.
        assert_eq!(secs(p.next(3.0)), 0.875);
        assert_eq!(secs(p.next(11.0)), 1.0);
    }

    #[test]
    fn no_limit_keeps_pauses_and_absurd_times_are_bounded() {
        let mut p = Pacer::new(1.0, None);
        assert_eq!(secs(p.next(30.0)), 30.0);
        assert_eq!(p.next(1e300), MAX_WAIT);
        let mut p = Pacer::new(f64::NAN, Some(0.0));
        assert_eq!(secs(p.next(5.0)), 5.0);
    }

    #[tokio::test(start_paused = true)]
    async fn plays_the_output_at_its_times() {
        let file = "{\"version\":2,\"width\":80,\"height\":24}\n\
                    [0.5, \"o\", \"hello \"]\n\
                    [0.6, \"i\", \"typed\"]\n\
                    [60.0, \"r\", \"100x30\"]\n\
                    [61.0, \"o\", \"world\\r\\n\"]\n";
        let start = tokio::time::Instant::now();
        let mut out = Vec::new();
        play(file.as_bytes(), &mut out, 1.0, None).await.unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "hello world\r\n");
        // 0.5 s, then the pauses capped at 2 s each: 0.1 + 2 + 1.
        assert_eq!(start.elapsed(), Duration::from_millis(3600));
    }

    #[tokio::test]
    async fn a_broken_file_names_the_line() {
        let file = "{\"version\":2,\"width\":80,\"height\":24}\n[0.5, \"o\", \"a\"]\nnot json\n";
        let mut out = Vec::new();
        let e = play(file.as_bytes(), &mut out, 100.0, None)
            .await
            .unwrap_err();
        assert!(e.starts_with("line 3: "), "{e}");
        assert_eq!(out, b"a");
        let e = play(&b""[..], &mut out, 1.0, None).await.unwrap_err();
        assert_eq!(e, "the file is empty");
    }
}
