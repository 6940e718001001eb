//! Check 8 (`--connect`): a real key push, tunnel and SSH banner, timed.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::access::{Check, Facts, Status};
use crate::aws::Aws;
use crate::cli::DoctorArgs;
use crate::error::Error;

/// How long `--connect` waits for the server's SSH banner through the tunnel.
const BANNER_TIMEOUT: Duration = Duration::from_secs(30);

/// Check 8: push a key, open the tunnel, read the SSH banner; time each step
/// and say where it failed.
pub(super) async fn connect_check(aws: &Aws, f: &Facts, args: &DoctorArgs) -> Check {
    let c = |status, msg: String| Check::new(8, "connect", status, msg);
    let (Ok(instance), Some((ep, _))) = (&f.instance, f.chosen_endpoint()) else {
        return c(
            Status::Skip,
            "Skipped: there is no instance and endpoint to connect through.".into(),
        );
    };
    let Some(private_ip) = instance.target_ip().filter(|_| instance.state == "running") else {
        return c(
            Status::Skip,
            "Skipped: the instance is not running with a private IP address.".into(),
        );
    };
    let dns_name = match ep.dial_name(aws.use_fips) {
        Ok(d) => d,
        Err(e) => return c(Status::Fail, format!("{e}.")),
    };
    let user = args.user.resolve(Some(&args.target));
    let mut timings = Vec::new();

    if args.port == 22 {
        let started = Instant::now();
        let pushed = async {
            let key = crate::aws::keypush::EphemeralKey::generate()?;
            crate::aws::keypush::send_public_key(
                aws.eic(),
                &instance.id,
                &user,
                &key.public_openssh,
            )
            .await
        }
        .await;
        let took = started.elapsed();
        if let Err(e) = pushed {
            let mut check = c(
                Status::Fail,
                format!("The key push for {user} failed after {}: {e}.", ms(took)),
            );
            if let Some(h) = e.hint() {
                check = check.fix(h);
            }
            return check;
        }
        timings.push(format!("key push for {user}: {}", ms(took)));
    }

    let dest = crate::target::Destination {
        instance_id: instance.id.clone(),
        port: args.port,
        eice_id: Some(ep.id.clone()),
        eice_dns: Some(dns_name.clone()),
        private_ip: Some(private_ip),
        max_tunnel_duration: None,
        prefetched: None,
    };
    let route = crate::target::Route {
        instance_id: instance.id.clone(),
        private_ip,
        vpc_id: instance.vpc_id.clone(),
        subnet_id: instance.subnet_id.clone(),
        endpoint_id: ep.id.clone(),
        dns_name,
        name: instance.name.clone(),
    };
    let started = Instant::now();
    let tunnel = crate::connect::open_tunnel(aws, &dest, &route).await;
    let took = started.elapsed();
    let mut tunnel = match tunnel {
        Ok(t) => t,
        Err(e) => {
            let step = match &e {
                Error::TunnelRejected { .. } => "The tunnel handshake was refused",
                Error::TunnelConnect { .. } => "The endpoint could not be reached",
                _ => "The tunnel could not be opened",
            };
            let mut check =
                c(Status::Fail, format!("{step} after {}: {e}.", ms(took))).details(timings);
            if let Some(h) = e.hint() {
                check = check.fix(h);
            }
            return check;
        }
    };
    timings.push(format!("tunnel handshake: {}", ms(took)));
    let closed = tunnel.close_status();

    let started = Instant::now();
    let mut banner = Vec::new();
    let read = tokio::time::timeout(BANNER_TIMEOUT, async {
        let mut byte = [0u8; 1];
        while banner.len() < 255 && !banner.ends_with(b"\n") {
            match tunnel.read(&mut byte).await {
                Ok(0) => return Err("the tunnel ended".to_owned()),
                Ok(_) => banner.extend_from_slice(&byte),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    })
    .await;
    let took = started.elapsed();
    let banner_text = String::from_utf8_lossy(&banner).trim().to_owned();
    let outcome = match read {
        Ok(Ok(())) if banner_text.starts_with("SSH-") => {
            timings.push(format!("SSH banner: {}", ms(took)));
            c(
                Status::Pass,
                format!(
                    "Connected to {} port {} through {}: the server said {banner_text}.",
                    instance.id, args.port, ep.id
                ),
            )
        }
        Ok(Ok(())) => c(
            Status::Fail,
            format!(
                "The tunnel reached port {}, but the server did not speak SSH (it sent {banner_text:?}).",
                args.port
            ),
        ),
        Ok(Err(why)) => match closed.abnormal() {
            Some((code, reason)) => c(
                Status::Fail,
                format!(
                    "The tunnel opened, then the endpoint closed it after {} before SSH began (code {code}: {reason}): the endpoint could not connect TCP to {}:{}. See checks 3, 5 and 6.",
                    ms(took),
                    private_ip,
                    args.port
                ),
            ),
            None => c(
                Status::Fail,
                format!(
                    "The tunnel opened, then ended after {} before SSH began: {why}.",
                    ms(took)
                ),
            ),
        },
        Err(_) if args.port == 3389 => c(
            Status::Warn,
            format!(
                "The tunnel to port 3389 opened and stayed open for {}; RDP speaks first from the client, so eic-ssh cannot check further.",
                ms(took)
            ),
        ),
        Err(_) => c(
            Status::Fail,
            format!(
                "The tunnel opened, but no SSH banner came within {}.",
                ms(BANNER_TIMEOUT)
            ),
        ),
    };
    let _ = tunnel.shutdown().await;
    outcome.details(timings)
}

pub(super) fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}
