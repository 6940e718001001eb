//! `eic-ssh play FILE`: a session recording played in this terminal.

use crate::cli::PlayArgs;
use crate::error::{EXIT_CANCELLED, Error};
use crate::record::player;

/// Play the recording; Ctrl-C (or SIGTERM, SIGHUP) stops it, exit 130.
pub async fn run(args: &PlayArgs) -> Result<u8, Error> {
    let failed = |reason: String| Error::Playback {
        path: args.file.clone(),
        reason,
    };
    let file = tokio::fs::File::open(&args.file)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let mut stop = crate::term::signals::StopSignals::new()?;
    let playing = player::play(
        tokio::io::BufReader::new(file),
        tokio::io::stdout(),
        args.speed,
        args.idle_time_limit,
    );
    tokio::select! {
        played = playing => played.map(|()| 0).map_err(failed),
        _ = stop.recv() => Ok(EXIT_CANCELLED),
    }
}
