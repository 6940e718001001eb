//! Logs go to stderr (stdout may carry tunnel bytes), at a level set by
//! `-v`/`-q` or `RUST_LOG`. Every event is redacted at the writer
//! ([`crate::term::redact`]), so no filter shows a secret; components that
//! print whole requests are also capped below trace for `-v`, to keep the
//! output readable.

use tracing_subscriber::EnvFilter;

/// Install the subscriber. `verbose` counts `-v`; `quiet` is `-q`.
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
        0 | 1 => ours,
        _ => "info",
    };
    let default = format!(
        "{theirs},eic_ssh={ours},russh={ours},aws_config={theirs},aws_smithy_runtime=info,aws_smithy_runtime_api=info,aws_sigv4=info,tungstenite=info,tokio_tungstenite=info,hyper=info,rustls=info"
    );
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::term::redact::RedactingStderr)
        .with_ansi(crate::term::color::stderr())
        .with_target(verbose >= 2)
        .without_time()
        .try_init();
}
