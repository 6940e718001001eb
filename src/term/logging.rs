//! Logs go to stderr (stdout may carry tunnel bytes), at a level set by
//! `-v`/`-q` or `RUST_LOG`. Every event is redacted at the writer
//! ([`crate::text::redact`]), so no filter shows a secret; components that
//! print whole requests are also capped below trace for `-v`, to keep the
//! output readable.

use std::io::Write;

use tracing_subscriber::EnvFilter;

use crate::text::redact::redact;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Install the subscriber. `verbose` counts `-v`; `quiet` is `-q`.
///
/// Without `-v` (and without `RUST_LOG`) only eic-ssh's own warnings and
/// errors show, as messages like any other (`eic-ssh: warning: …`), not as
/// log lines; the libraries' warnings repeat what the error says, in their
/// terms, and wait for `-v`.
pub fn init(verbose: u8, quiet: bool) {
    let ours = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    // Third-party request logging can include signed URLs and headers.
    let theirs = match verbose {
        0 => "error",
        1 => ours,
        _ => "info",
    };
    let russh = match verbose {
        0 => "error",
        _ => ours,
    };
    let default = format!(
        "{theirs},eic_ssh={ours},russh={russh},aws_config={theirs},aws_smithy_runtime=info,aws_smithy_runtime_api=info,aws_sigv4=info,tungstenite=info,tokio_tungstenite=info,hyper=info,rustls=info"
    );
    let from_env = EnvFilter::try_from_env("RUST_LOG").ok();
    let house_style = verbose == 0 && from_env.is_none();
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(RedactingStderr)
        .with_ansi(crate::term::color::stderr());
    let _ = match house_style {
        true => builder.event_format(HouseStyle).try_init(),
        false => builder.with_target(verbose >= 2).without_time().try_init(),
    };
}

/// An event as eic-ssh's other messages read: `eic-ssh: warning: …` for a
/// warning, `eic-ssh: …` for an error, without control characters.
struct HouseStyle;

impl<S, N> FormatEvent<S, N> for HouseStyle
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = String::new();
        ctx.field_format()
            .format_fields(format::Writer::new(&mut fields), event)?;
        writeln!(writer, "{}", house_line(*event.metadata().level(), &fields))
    }
}

/// `eic-ssh: warning: text` (or `eic-ssh: text` for an error).
fn house_line(level: tracing::Level, text: &str) -> String {
    let label = match level {
        tracing::Level::WARN => "warning: ",
        _ => "",
    };
    format!("eic-ssh: {label}{}", crate::text::printable(text))
}

/// A `MakeWriter` for tracing: each event is collected, redacted and then
/// written to stderr in one piece.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactingStderr;

/// One event's bytes on their way to stderr.
#[derive(Debug, Default)]
pub struct EventWriter {
    buf: Vec<u8>,
}

impl Write for EventWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        super::clear_progress();
        let _ = std::io::stderr().lock().write_all(redact(&text).as_bytes());
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> EventWriter {
        EventWriter::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_messages() {
        assert_eq!(
            house_line(tracing::Level::WARN, "-L 8080: accept failed"),
            "eic-ssh: warning: -L 8080: accept failed"
        );
        assert_eq!(
            house_line(tracing::Level::ERROR, "it broke \x1b[2J"),
            "eic-ssh: it broke [2J"
        );
    }
}
