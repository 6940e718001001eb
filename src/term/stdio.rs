//! Standard input and output as async streams. Pipes (what OpenSSH gives a
//! ProxyCommand) are driven by the runtime directly, with no blocking helper
//! thread and no extra copy; anything else (a terminal, a file) falls back
//! to tokio's thread-backed stdio.

use std::os::fd::AsFd;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;

/// Stdin, non-blocking when it is a pipe.
pub fn stdin() -> Pin<Box<dyn AsyncRead + Send>> {
    let pipe = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Receiver::from_owned_fd);
    match pipe {
        Ok(p) => Box::pin(p),
        Err(_) => Box::pin(tokio::io::stdin()),
    }
}

/// Stdout, non-blocking when it is a pipe.
pub fn stdout() -> Pin<Box<dyn AsyncWrite + Send>> {
    let pipe = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Sender::from_owned_fd);
    match pipe {
        Ok(p) => Box::pin(p),
        Err(_) => Box::pin(tokio::io::stdout()),
    }
}

/// Resolves once nobody reads stdout any more: the reader closed its end
/// of the pipe (a ProxyCommand's ssh exited), which the pipe reports as an
/// error. Never resolves when stdout is not a pipe.
pub async fn stdout_abandoned() {
    use tokio::io::Interest;
    let watched = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Sender::from_owned_fd);
    match watched {
        Ok(p) => {
            let _ = p.ready(Interest::ERROR).await;
        }
        Err(_) => std::future::pending().await,
    }
}
