//! The network below the AWS calls and the tunnel: HTTP proxies (the
//! environment's `HTTPS_PROXY`, `NO_PROXY`...) and dialing a host name over
//! both address families (Happy Eyeballs).

pub mod dial;
pub mod proxy;
