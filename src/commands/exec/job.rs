//! One instance of an `exec` run: its own key, tunnel and session, inside
//! the run's limits (the parallelism and the endpoint's open tunnels).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::output::InstanceSink;
use crate::aws::Aws;
use crate::aws::ec2::{EndpointInfo, InstanceInfo};
use crate::aws::keypush::{self, EphemeralKey};
use crate::connect;
use crate::error::Error;
use crate::ssh::host_keys::{self, HostKeyChecking, HostKeyPolicy};
use crate::ssh::known_hosts;
use crate::ssh::recorder::KnownHostsRecorder;
use crate::ssh::session::{Keepalive, Login, Repush, Session};
use crate::target::{Destination, Route};

/// Tries for a tunnel that the endpoint refuses as over its quota.
const TUNNEL_TRIES: u32 = 12;
/// Tries for a key push that is throttled.
const PUSH_TRIES: u32 = 6;
/// A pushed key lives 60 s; push again before a retried tunnel if the last
/// push is older than this.
const PUSH_FRESH: Duration = Duration::from_secs(40);
/// How long a finished instance waits for its tunnel to close before it
/// gives its slot at the endpoint to the next.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// What every job of a run shares.
pub struct Shared {
    pub aws: Arc<Aws>,
    pub command: Vec<u8>,
    pub parallel: Arc<Semaphore>,
    pub host_keys: HostKeyChecking,
    pub notify: bool,
    pub recorder: KnownHostsRecorder,
}

/// One instance to run on.
pub struct Job {
    pub instance: InstanceInfo,
    pub user: String,
    /// The endpoint that serves it and its tunnel slots, or why none does.
    pub endpoint: Result<(EndpointInfo, Arc<Semaphore>), Error>,
}

/// How one instance's run ended.
pub struct Outcome {
    pub status: Option<u8>,
    pub error: Option<Error>,
    pub duration: Duration,
}

/// Run the command on one instance. Errors are the outcome's, never the
/// run's: one unreachable instance does not stop the others.
pub async fn run(shared: Arc<Shared>, job: Job, mut sink: InstanceSink) -> (Outcome, InstanceSink) {
    let _slot = shared.parallel.clone().acquire_owned().await;
    let started = Instant::now();
    let result = connect_and_run(&shared, job, &mut sink).await;
    sink.finish().await;
    let (status, error) = match result {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(e)),
    };
    let outcome = Outcome {
        status,
        error,
        duration: started.elapsed(),
    };
    (outcome, sink)
}

async fn connect_and_run(shared: &Shared, job: Job, sink: &mut InstanceSink) -> Result<u8, Error> {
    let info = &job.instance;
    if info.state != "running" {
        return Err(Error::InstanceNotRunning {
            instance: info.id.clone(),
            name: None,
            state: info.state.clone(),
            region: shared.aws.region.clone(),
            profile: shared.aws.chosen_profile().map(str::to_owned),
        });
    }
    let private_ip = info.target_ip().ok_or_else(|| Error::NoPrivateIp {
        instance: info.id.clone(),
    })?;
    let (endpoint, slots) = job.endpoint?;
    let aws = &shared.aws;
    let route = Route {
        instance_id: info.id.clone(),
        private_ip,
        vpc_id: info.vpc_id.clone(),
        subnet_id: info.subnet_id.clone(),
        endpoint_id: endpoint.id.clone(),
        dns_name: endpoint.dial_name(aws.use_fips)?,
        name: info.name.clone(),
    };
    let dest = Destination {
        instance_id: info.id.clone(),
        port: 22,
        eice_id: Some(endpoint.id.clone()),
        eice_dns: Some(route.dns_name.clone()),
        private_ip: Some(private_ip),
        max_tunnel_duration: None,
        prefetched: None,
    };
    let key = EphemeralKey::generate()?;
    let known_algorithms = known_hosts::known_algorithms(&shared.host_keys.known_hosts, &info.id);
    let console = (known_algorithms.is_empty() && shared.host_keys.console)
        .then(|| host_keys::fetch_console(aws.ec2().clone(), info.id.clone()));

    // The key push runs beside each tunnel attempt; a refusal for too many
    // connections gives the slot back and waits before trying again.
    let mut pushed_at: Option<Instant> = None;
    let mut attempt = 0;
    let (tunnel, _slot) = loop {
        attempt += 1;
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("the endpoint's tunnel slots closed".into()))?;
        let push = async {
            if pushed_at.is_some_and(|t| t.elapsed() < PUSH_FRESH) {
                return Ok(None);
            }
            push_with_retry(aws, &info.id, &job.user, &key.public_openssh)
                .await
                .map(|()| Some(Instant::now()))
        };
        let (tunnel, pushed) = tokio::join!(connect::open_tunnel(aws, &dest, &route), push);
        if let Some(at) = pushed? {
            pushed_at = Some(at);
        }
        match tunnel {
            Ok(t) => break (t, slot),
            Err(e) if too_many_connections(&e) && attempt < TUNNEL_TRIES => {
                drop(slot);
                let wait = backoff(attempt);
                tracing::info!(
                    instance = info.id,
                    ?wait,
                    "the endpoint is at its connection quota; retrying"
                );
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e),
        }
    };
    let closed = tunnel.close_status();
    let policy = HostKeyPolicy {
        host: info.id.clone(),
        known_hosts: shared.host_keys.known_hosts.clone(),
        notify: shared.notify,
        strict: shared.host_keys.strict,
        console,
        known_algorithms,
        recorder: Some(shared.recorder.clone()),
    };
    let keepalive = Keepalive {
        interval: Duration::from_secs(30),
        count: 4,
    };
    let outcome = async {
        // A key refused because it expired before it was used is pushed
        // again, once.
        let repush: Repush<'_> = Box::pin(keypush::send_public_key(
            aws.eic(),
            &info.id,
            &job.user,
            &key.public_openssh,
        ));
        let login = Login {
            policy,
            user: &job.user,
            key: key.private.clone(),
            keepalive,
            limit: aws.connect_timeout,
            repush: Some(repush),
            fallback: None,
        };
        let session = Session::connect(tunnel, login).await?;
        let status = session.exec_captured(&shared.command, sink).await?;
        // Keep the endpoint's slot until the connection is really over, so
        // the next instance's tunnel does not overlap this one at the
        // endpoint (bounded: a peer that never closes must not stall the run).
        session.close_and_wait(CLOSE_WAIT).await;
        Ok(status)
    }
    .await;
    // A tunnel that ended under the command is this instance's failure,
    // with the bytes that got through when it was cut mid-stream.
    outcome.map_err(|e| closed.explain(e))
}

/// `SendSSHPublicKey`, retried with backoff while the service throttles.
async fn push_with_retry(aws: &Aws, id: &str, user: &str, key: &str) -> Result<(), Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match keypush::send_public_key(aws.eic(), id, user, key).await {
            Err(Error::KeyPush { code, .. })
                if code == "ThrottlingException" && attempt < PUSH_TRIES =>
            {
                let wait = backoff(attempt);
                tracing::info!(
                    instance = id,
                    ?wait,
                    "SendSSHPublicKey was throttled; retrying"
                );
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// Whether the endpoint refused the tunnel for having too many open: HTTP
/// 429, as the service answers a request over its quota.
pub fn too_many_connections(e: &Error) -> bool {
    matches!(e, Error::TunnelRejected { status: 429, .. })
}

/// Exponential backoff with jitter: between half and all of 100 ms ×
/// 2^(n-1), capped at 3 s, so retries from many instances spread out.
pub fn backoff(attempt: u32) -> Duration {
    let cap_ms: u64 = (100u64 << attempt.saturating_sub(1).min(5)).min(3000);
    let ms = cap_ms / 2 + rand::random::<u64>() % (cap_ms / 2 + 1);
    Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let d = backoff(attempt).as_millis();
            let cap = (100u128 << (attempt - 1).min(5)).min(3000);
            assert!(d >= cap / 2 && d <= cap, "{attempt}: {d}");
        }
    }

    #[test]
    fn only_a_quota_refusal_is_retried() {
        let refusal = |status| Error::TunnelRejected {
            status,
            code: Some("TooManyConnections".into()),
            message: "m".into(),
            date: None,
        };
        assert!(too_many_connections(&refusal(429)));
        assert!(!too_many_connections(&refusal(403)));
        assert!(!too_many_connections(&Error::TunnelClosed {
            code: 1011,
            reason: "r".into()
        }));
    }
}
