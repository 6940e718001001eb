//! `eic-ssh proxy`: OpenSSH's ProxyCommand, stdin/stdout joined to a tunnel.

use crate::aws::keypush;
use crate::cli::ProxyArgs;
use crate::connect;
use crate::connect::context::Context;
use crate::error::Error;
use crate::target::KeyPush;
use crate::tunnel::relay::CLOSE_GRACE;

/// `eic-ssh proxy`: join stdin/stdout to a tunnel. Stdout carries tunnel
/// bytes and nothing else. Ends as soon as either side closes.
pub async fn run(args: ProxyArgs, no_pick: bool) -> Result<u8, Error> {
    let user = args.user.resolve(Some(&args.target));
    // A missing key is a local problem: say so before any network call.
    let push = match args.key.no_push {
        true => None,
        false => Some(KeyPush {
            os_user: user,
            public_key: keypush::user_public_key(args.key.public_key.as_deref()).await?,
        }),
    };
    let Context { aws, cache } = Context::load(&args.connect.settings()).await?;
    let chosen = crate::target::choose::choose(&aws, &args.target, no_pick, true).await?;
    let mut dest = args.connect.destination(&chosen.instance_id);
    dest.prefetched = chosen.prefetched;
    if let Some(port) = args.port_arg {
        dest.port = port;
    }
    let (tunnel, _route, _) =
        connect::connect_cached(&aws, &dest, push.as_ref(), cache.as_ref(), false).await?;
    let closed = tunnel.close_status();
    let relay = tunnel.relay(
        crate::term::stdio::stdin(),
        crate::term::stdio::stdout(),
        CLOSE_GRACE,
    );
    tokio::pin!(relay);
    let result = tokio::select! {
        r = &mut relay => r,
        // ssh went away. Its stdin EOF normally ends the relay at once, but
        // not while the relay waits on a stalled tunnel, which could hold
        // it for as long as TCP retries (minutes): give it a moment, then go.
        () = crate::term::stdio::stdout_abandoned() => {
            match tokio::time::timeout(CLOSE_GRACE, &mut relay).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::info!("the reader of stdout went away while the tunnel was stalled: ending");
                    Err(std::io::ErrorKind::BrokenPipe.into())
                }
            }
        }
    };
    // A tunnel that closed with an error, or broke without a close frame,
    // is a failure, with the bytes that got through: never exit 0 on a cut.
    if let Some(e) = closed.error() {
        return Err(e);
    }
    match result {
        Ok(_) => Ok(0),
        // The reader (ssh) went away: that is how a proxy normally ends.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(closed.explain(Error::Tunnel(e.to_string()))),
    }
}
