//! The EC2 Instance Connect Endpoint websocket: `GET /openTunnel`,
//! presigned with SigV4 in the query string, upgraded to a websocket whose
//! binary messages carry the bytes of one TCP connection to the instance.
//!
//! The upgrade is served with hyper (not tungstenite's own handshake) so
//! that refusals are ordinary HTTP answers with a JSON body and a
//! `Content-Length`, written and flushed like any response.
//!
//! One job per module: [`admission`] decides a request as the service does
//! (signature, parameters, the instance, security groups, the quota);
//! [`upgrade`] serves the HTTP side and answers 101 or the JSON refusal;
//! [`relay`] carries one tunnel's bytes and closes it for every reason the
//! service does.

mod admission;
mod relay;
mod upgrade;

pub(crate) use upgrade::serve;
