//! Trace export over OTLP/HTTP with protobuf bodies, the transport every
//! OpenTelemetry collector, Jaeger and Grafana Tempo accept on port 4318.
//!
//! Spans are batched by the SDK's batch processor on a thread of its own
//! (`OTEL_BSP_SCHEDULE_DELAY`, default 5 s, and the SDK's other `OTEL_BSP_*`
//! variables apply), so a request never waits for the collector; a collector
//! that is down costs dropped spans and a log line from the SDK, never a
//! failed request or job. The HTTP client is [`Client`]: plain HTTP on the
//! hyper-util client the workspace already builds, run on the process's
//! Tokio runtime. TLS is not built in: run a collector (or its agent) next
//! to the process and let it forward over TLS.
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use crate::env::{EnvError, var};

/// One export request, from connecting to the end of the reply.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// A collector's reply is a few bytes; more is not a collector.
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector's base URL, e.g.
/// `http://127.0.0.1:4318`; spans go to `<base>/v1/traces`, as the
/// OpenTelemetry specification says for this variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpEndpoint {
    base: String,
}

impl OtlpEndpoint {
    /// Reads `OTEL_EXPORTER_OTLP_ENDPOINT`; `None` (export off) when unset or blank.
    ///
    /// # Errors
    /// [`EnvError`] for a value that is not an `http://` URL.
    pub fn from_env() -> Result<Option<Self>, EnvError> {
        var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .map(|raw| Self::parse(&raw))
            .transpose()
    }

    /// Checks `raw` the way [`OtlpEndpoint::from_env`] does.
    ///
    /// # Errors
    /// [`EnvError`] naming `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn parse(raw: &str) -> Result<Self, EnvError> {
        let refused = |reason: &str| EnvError {
            name: "OTEL_EXPORTER_OTLP_ENDPOINT",
            reason: reason.to_owned(),
        };
        let base = raw.trim().trim_end_matches('/');
        let Some(authority) = base.strip_prefix("http://") else {
            return Err(refused(
                "must be an http:// URL such as http://127.0.0.1:4318 (OTLP/HTTP; for TLS, \
                 export to a collector on this host and let it forward)",
            ));
        };
        if authority.is_empty() || base.contains(['?', '#']) {
            return Err(refused("must be a base URL such as http://127.0.0.1:4318"));
        }
        if base.parse::<hyper::Uri>().is_err() {
            return Err(refused("is not a valid URL"));
        }
        Ok(Self {
            base: base.to_owned(),
        })
    }

    /// Where spans are posted: `<base>/v1/traces`.
    #[must_use]
    pub fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.base)
    }
}

/// The exporter and its batch processor, from start to shutdown.
pub(super) struct Pipeline {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl Pipeline {
    /// Builds the exporter for `endpoint`; spans carry `service.name = service`.
    /// Must run inside the Tokio runtime the exports will use.
    pub(super) fn start(endpoint: &OtlpEndpoint, service: &'static str) -> Result<Self, anyhow::Error> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(Client::on_current_runtime()?)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint.traces_url())
            .with_timeout(EXPORT_TIMEOUT)
            .build()?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(service).build())
            .build();
        let tracer = provider.tracer(service);
        Ok(Self { provider, tracer })
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans.
    pub(super) fn layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(self.tracer.clone())
    }

    /// Exports what is buffered and stops. The provider's shutdown blocks
    /// until the batch thread is done, and that thread's exports run on this
    /// runtime: so it waits on the blocking pool, not on a runtime worker.
    pub(super) async fn shutdown(self) {
        let provider = self.provider;
        let stopped = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match stopped {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "trace export did not shut down cleanly"),
            Err(err) => tracing::warn!(error = %err, "trace export did not shut down cleanly"),
        }
    }
}

/// The OTLP exporter's HTTP client. The SDK's batch processor calls it on
/// its own thread, outside Tokio, while hyper needs Tokio's reactor: each
/// request is spawned onto the runtime the client was built in, and the
/// batch thread waits for its join handle.
#[derive(Debug, Clone)]
struct Client {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
}

impl Client {
    fn on_current_runtime() -> Result<Self, anyhow::Error> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| anyhow::anyhow!("trace export needs a Tokio runtime"))?;
        Ok(Self {
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
            runtime,
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let http = self.http.clone();
        let exchange = async move {
            let response = http.request(request.map(Full::new)).await?;
            let (head, body) = response.into_parts();
            let body = Limited::new(body, MAX_REPLY_BYTES).collect().await?.to_bytes();
            Ok::<_, HttpError>(Response::from_parts(head, body))
        };
        // The timer too is the runtime's: made on the batch thread, it would panic.
        let spawned = self
            .runtime
            .spawn(async move { tokio::time::timeout(EXPORT_TIMEOUT, exchange).await });
        spawned.await??
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// Answers one HTTP request with `200 ok`; returns the body it got.
    async fn answer_once(listener: tokio::net::TcpListener) -> Vec<u8> {
        let (mut stream, _) = listener.accept().await.expect("a connection");
        let mut received = Vec::new();
        let mut buf = [0_u8; 4096];
        let (head_end, length) = loop {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "the request ended early");
            received.extend_from_slice(&buf[..n]);
            if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .expect("a content-length");
                break (end + 4, length);
            }
        };
        while received.len() < head_end + length {
            let n = stream.read(&mut buf).await.expect("read");
            received.extend_from_slice(&buf[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await
            .expect("write");
        received[head_end..].to_vec()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_client_sends_from_a_thread_outside_the_runtime_as_the_batch_processor_does() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/v1/traces", listener.local_addr().expect("address"));
        let server = tokio::spawn(answer_once(listener));
        let client = Client::on_current_runtime().expect("inside a runtime");

        let reply = std::thread::spawn(move || {
            let request = Request::post(url)
                .body(Bytes::from_static(b"spans"))
                .expect("a request");
            futures::executor::block_on(client.send_bytes(request))
        })
        .join()
        .expect("the thread ends");

        let reply = reply.expect("sent and answered");
        assert_eq!(reply.status(), 200);
        assert_eq!(reply.body().as_ref(), b"ok");
        assert_eq!(server.await.expect("served"), b"spans");
    }

    #[test]
    fn endpoints_are_base_urls_that_spans_are_posted_under() {
        let endpoint = OtlpEndpoint::parse("http://127.0.0.1:4318/").expect("valid");
        assert_eq!(endpoint.traces_url(), "http://127.0.0.1:4318/v1/traces");
        let endpoint = OtlpEndpoint::parse(" http://collector:4318/otlp ").expect("valid");
        assert_eq!(endpoint.traces_url(), "http://collector:4318/otlp/v1/traces");
    }

    #[test]
    fn endpoints_other_than_plain_http_urls_are_refused() {
        for bad in [
            "https://tempo.example.com",
            "127.0.0.1:4318",
            "http://",
            "http://a:4318/?x=1",
            "grpc://a",
        ] {
            let err = OtlpEndpoint::parse(bad).expect_err(bad);
            assert_eq!(err.name, "OTEL_EXPORTER_OTLP_ENDPOINT");
        }
    }
}
