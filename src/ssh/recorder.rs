//! One writer for known_hosts: when many sessions learn host keys at once
//! (`eic-ssh exec`), each new key is handed to a single task that appends
//! it, so no line is lost or torn however many arrive together.

use std::path::PathBuf;

use russh::keys::PublicKey;
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::ssh::known_hosts;

type Request = (String, PublicKey, oneshot::Sender<Result<(), Error>>);

/// A handle on the known_hosts writer task; clones share the one writer.
#[derive(Clone, Debug)]
pub struct KnownHostsRecorder {
    tx: mpsc::Sender<Request>,
}

impl KnownHostsRecorder {
    /// Start the writer for `file`. It ends when every handle is dropped.
    pub fn start(file: PathBuf) -> KnownHostsRecorder {
        let (tx, mut rx) = mpsc::channel::<Request>(64);
        tokio::spawn(async move {
            while let Some((host, key, done)) = rx.recv().await {
                // A line is a few hundred bytes: writing it inline is
                // quicker than handing it to another thread.
                let _ = done.send(known_hosts::learn(&file, &host, &key));
            }
        });
        KnownHostsRecorder { tx }
    }

    /// Append `host key`, once the writer gets to it.
    pub async fn learn(&self, host: &str, key: &PublicKey) -> Result<(), Error> {
        let (done, result) = oneshot::channel();
        let gone = || Error::Internal("the known_hosts writer stopped".into());
        self.tx
            .send((host.to_owned(), key.clone(), done))
            .await
            .map_err(|_| gone())?;
        result.await.map_err(|_| gone())?
    }
}
