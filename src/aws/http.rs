//! The SDK's HTTPS client: rustls on aws-lc with our trust store, and the
//! environment's proxies. Each API request says at `-v` whether it went
//! through a proxy; a proxy that refuses is reported with its status.

use std::sync::Arc;

use aws_smithy_http_client::{pool, proxy::ProxyConfig, tls};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;

use crate::error::Error;
use crate::net::proxy::{Proxies, Proxy};

/// The HTTPS client for the SDK, trusting `extra_ca` on top of the system's
/// roots (which the SDK loads itself, on first connection).
pub(super) fn https_client(extra_ca: Option<&[u8]>) -> Result<SharedHttpClient, Error> {
    let mut trust = tls::TrustStore::default();
    if let Some(pem) = extra_ca {
        trust = trust.with_pem_certificate(pem.to_vec());
    }
    let tls_context = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| Error::TlsSetup(e.into()))?;
    let provider = tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc);
    if !Proxies::any_in_env() {
        // No proxy named: the client the benches measured.
        return Ok(aws_smithy_http_client::Builder::new()
            .tls_provider(provider)
            .tls_context(tls_context)
            .build_https());
    }
    // The connection pool is the SDK's client that takes a proxy setting.
    let pool = pool::ConnectionPool::builder()
        .proxy_config(ProxyConfig::from_env())
        .tls_provider(provider)
        .tls_context(tls_context)
        .build_https()
        .map_err(|e| Error::TlsSetup(e.into()))?;
    let client = pool::Client::new(&pool).map_err(|e| Error::TlsSetup(e.into()))?;
    Ok(SharedHttpClient::new(ProxyAware {
        inner: SharedHttpClient::new(client),
        proxies: Arc::new(Proxies::from_env()),
    }))
}

/// Wraps the SDK's client: says which proxy each request takes, and turns
/// a failure through a proxy into the proxy's own answer.
#[derive(Debug)]
struct ProxyAware {
    inner: SharedHttpClient,
    proxies: Arc<Proxies>,
}

impl HttpClient for ProxyAware {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(ProxyAwareConnector {
            inner: self.inner.http_connector(settings, components),
            proxies: self.proxies.clone(),
        })
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner
            .validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct ProxyAwareConnector {
    inner: SharedHttpConnector,
    proxies: Arc<Proxies>,
}

impl HttpConnector for ProxyAwareConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request.uri().parse::<http::Uri>().ok().and_then(|uri| {
            let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
            let port = uri.port_u16().unwrap_or(443);
            Some((host.to_owned(), port, self.proxies.for_uri(&uri)))
        });
        match &target {
            Some((host, port, Some(proxy))) => {
                tracing::info!("API request to {host}:{port} through the proxy {proxy}")
            }
            Some((host, port, None)) => {
                tracing::info!("API request to {host}:{port}: direct, no proxy")
            }
            None => {}
        }
        let sent = self.inner.call(request);
        HttpConnectorFuture::new(async move {
            match (sent.await, target) {
                (Err(e), Some((host, port, Some(proxy)))) => {
                    Err(explain(e, &proxy, &host, port).await)
                }
                (result, _) => result,
            }
        })
    }
}

/// The SDK's client reduces a proxy's refusal to "unsuccessful": ask the
/// proxy again, and report its answer (status, or why it cannot be
/// reached). A refusal is final, so it is not retried.
async fn explain(e: ConnectorError, proxy: &Proxy, host: &str, port: u16) -> ConnectorError {
    if e.is_timeout() {
        return e;
    }
    match proxy.connect(host, port).await {
        Ok(_) => e,
        Err(refused) => ConnectorError::other(Box::new(refused), None),
    }
}
