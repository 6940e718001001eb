//! The signals that ask a command to stop, for commands that must clean up
//! before they go (a copy's temporaries, a background copy not yet ready).

use crate::error::Error;

/// SIGINT, SIGTERM and SIGHUP, whichever comes first.
pub struct StopSignals([tokio::signal::unix::Signal; 3]);

impl StopSignals {
    pub fn new() -> Result<StopSignals, Error> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals([
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
        ]))
    }

    /// The name of the first signal to arrive.
    pub async fn recv(&mut self) -> &'static str {
        let [int, term, hup] = &mut self.0;
        tokio::select! {
            _ = int.recv() => "interrupted",
            _ = term.recv() => "terminated",
            _ = hup.recv() => "hung up",
        }
    }
}
