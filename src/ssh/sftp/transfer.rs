//! Pipelined SFTP reads and writes: many requests in flight at once, so a
//! transfer runs at the window's pace rather than one round trip per chunk.

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesOrdered, FuturesUnordered};
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, StatusCode};

use super::meta::{Finish, MODE_BITS};

/// Requests in flight per file: with 255 KiB chunks, about 8 MiB, within
/// the 16 MiB window.
const DEPTH: usize = 32;

type ReadReply = (u64, u32, Result<Vec<u8>, SftpError>);

/// Reads a remote file in order, with up to [`DEPTH`] reads in flight.
pub struct Reader {
    raw: Arc<RawSftpSession>,
    handle: String,
    chunk: u32,
    /// The size at open; reads past it probe for growth once.
    size: u64,
    next: u64,
    probed: bool,
    inflight: FuturesOrdered<BoxFuture<'static, ReadReply>>,
    done: bool,
}

impl Reader {
    pub(super) fn new(raw: Arc<RawSftpSession>, handle: String, chunk: u32, size: u64) -> Reader {
        Reader {
            raw,
            handle,
            chunk,
            size,
            next: 0,
            probed: false,
            inflight: FuturesOrdered::new(),
            done: false,
        }
    }

    fn fill(&mut self) {
        while self.inflight.len() < DEPTH && (self.next < self.size || !self.probed) {
            if self.next >= self.size {
                self.probed = true;
            }
            let (raw, handle, offset, len) =
                (self.raw.clone(), self.handle.clone(), self.next, self.chunk);
            self.inflight.push_back(Box::pin(async move {
                let r = raw.read(handle, offset, len).await.map(|d| d.data);
                (offset, len, r)
            }));
            self.next += u64::from(self.chunk);
        }
    }

    /// The next piece of the file, or `None` at its end.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, SftpError> {
        if self.done {
            return Ok(None);
        }
        self.fill();
        let Some((offset, len, reply)) = self.inflight.next().await else {
            self.done = true;
            return Ok(None);
        };
        match reply {
            Ok(data) => {
                let end = offset + data.len() as u64;
                if end > self.size {
                    // The file grew: keep reading until the server says EOF.
                    self.size = u64::MAX;
                }
                if (data.len() as u64) < u64::from(len) {
                    // A short read: what was asked beyond it is misaligned.
                    // Start again from where this one ended.
                    self.inflight = FuturesOrdered::new();
                    self.next = end;
                    self.probed = false;
                    if self.size != u64::MAX {
                        self.size = self.size.max(end);
                    }
                    if data.is_empty() {
                        self.done = true;
                        return Ok(None);
                    }
                }
                Ok(Some(data))
            }
            Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => {
                self.done = true;
                self.inflight = FuturesOrdered::new();
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Close the remote handle.
    pub async fn close(mut self) {
        self.inflight = FuturesOrdered::new();
        let _ = self.raw.close(self.handle.clone()).await;
    }
}

/// Writes a remote file sequentially, with up to [`DEPTH`] writes in flight.
pub struct Writer {
    raw: Arc<RawSftpSession>,
    handle: String,
    /// The file's path, for a server that cannot set attributes by handle.
    path: String,
    chunk: usize,
    offset: u64,
    inflight: FuturesUnordered<BoxFuture<'static, Result<(), SftpError>>>,
}

impl Writer {
    pub(super) fn new(
        raw: Arc<RawSftpSession>,
        handle: String,
        path: String,
        chunk: u32,
    ) -> Writer {
        Writer {
            raw,
            handle,
            path,
            chunk: usize::try_from(chunk).unwrap_or(32 * 1024),
            offset: 0,
            inflight: FuturesUnordered::new(),
        }
    }

    /// Append `data`; returns once it is sent (not yet acknowledged).
    pub async fn write(&mut self, data: &[u8]) -> Result<(), SftpError> {
        for piece in data.chunks(self.chunk.max(1)) {
            while self.inflight.len() >= DEPTH {
                if let Some(r) = self.inflight.next().await {
                    r?;
                }
            }
            let (raw, handle, offset) = (self.raw.clone(), self.handle.clone(), self.offset);
            let piece = piece.to_vec();
            self.offset += piece.len() as u64;
            self.inflight.push(Box::pin(async move {
                raw.write(handle, offset, piece).await.map(drop)
            }));
        }
        Ok(())
    }

    /// Wait for every write to be acknowledged, give the file `finish`'s
    /// mode and times on its handle (`fsetstat`; after the writes, so the
    /// times stay), then close the handle.
    pub async fn finish(mut self, finish: Finish) -> Result<(), SftpError> {
        let mut result = Ok(());
        while let Some(r) = self.inflight.next().await {
            if let Err(e) = r
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        if result.is_ok() && finish != Finish::default() {
            let attrs = FileAttributes {
                permissions: finish.mode.map(|m| m & MODE_BITS),
                atime: finish.times.map(|t| t.0),
                mtime: finish.times.map(|t| t.1),
                ..Default::default()
            };
            result = match self.raw.fsetstat(self.handle.as_str(), attrs.clone()).await {
                Ok(_) => Ok(()),
                // A server without fsetstat: by path, the temporary that
                // only this copy knows.
                Err(SftpError::Status(s)) if s.status_code == StatusCode::OpUnsupported => {
                    self.raw.setstat(self.path.as_str(), attrs).await.map(drop)
                }
                Err(e) => Err(e),
            };
        }
        let closed = self.raw.close(self.handle.clone()).await.map(drop);
        result.and(closed)
    }

    /// Give up: close the handle without waiting for writes.
    pub async fn abort(mut self) {
        self.inflight = FuturesUnordered::new();
        let _ = self.raw.close(self.handle.clone()).await;
    }
}
