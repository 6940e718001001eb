//! Running a command with its output handed to a sink instead of this
//! process's stdout and stderr, and no input: the shape of `eic-ssh exec`,
//! where many sessions run at once.

use russh::ChannelMsg;

use crate::error::Error;
use crate::ssh::session::{Session, signal_number};

/// Which of the remote command's streams bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Where a captured command's output goes.
pub trait OutputSink {
    /// Bytes from one stream, in order.
    fn data(&mut self, stream: Stream, bytes: &[u8]) -> impl Future<Output = ()> + Send;
}

impl Session {
    /// Run `command` with no input (its stdin is closed at once), its
    /// output to `sink`. Returns its exit status (128+N for a signal).
    pub async fn exec_captured<S: OutputSink>(
        &self,
        command: &[u8],
        sink: &mut S,
    ) -> Result<u8, Error> {
        let mut channel = self.handle().channel_open_session().await?;
        channel.exec(true, command).await?;
        channel.eof().await?;
        let mut status: Option<u8> = None;
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => sink.data(Stream::Stdout, &data).await,
                ChannelMsg::ExtendedData { data, ext: 1 } => sink.data(Stream::Stderr, &data).await,
                ChannelMsg::ExitStatus { exit_status } => {
                    status = Some(u8::try_from(exit_status).unwrap_or(255));
                }
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    status = Some(128u8.saturating_add(signal_number(&signal_name)));
                }
                ChannelMsg::Failure => {
                    return Err(Error::SshProtocol("the server refused to run the command"));
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        status.ok_or(Error::SshProtocol(
            "the connection closed before the remote command's exit status arrived",
        ))
    }
}
