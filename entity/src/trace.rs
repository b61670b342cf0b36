//! W3C trace context (`traceparent`) of `tracing` spans, so that one trace
//! follows an order from its HTTP request through the outbox and the queue
//! to the jobs it caused, in another process.
//!
//! The api's request span and the worker's job span are ordinary `tracing`
//! spans; when OpenTelemetry export is on (`OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `worker::telemetry`) each also has an OpenTelemetry span context, and:
//! - [`current`] turns the current span into a `traceparent` string, which
//!   `outbox` stores with every row written inside it;
//! - [`follow`] makes a new span continue the trace of a `traceparent` (the
//!   incoming HTTP header, or the one of the outbox row a job came from).
//!
//! With export off there is no OpenTelemetry layer: [`current`] returns
//! `None`, [`follow`] does nothing, and nothing here costs more than a
//! lookup that finds no layer. The format and its checks are the SDK's
//! propagator's, not ours: `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

const TRACEPARENT: &str = "traceparent";

/// The `traceparent` of the current span, when it belongs to an exported trace.
#[must_use]
pub fn current() -> Option<String> {
    of(&tracing::Span::current())
}

/// The `traceparent` of `span`, when it belongs to an exported trace.
#[must_use]
pub fn of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = std::collections::HashMap::<String, String>::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span` a child of the span `traceparent` names (in this process or
/// another), so it continues that trace. Call it before the span is first
/// entered. A missing or malformed `traceparent` leaves the span where it
/// is (the root of a new trace, or under the current span); so does export
/// being off.
pub fn follow(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(parent) = traceparent.and_then(parse) else {
        return;
    };
    // Fails only when there is no OpenTelemetry layer (export off) or the
    // span is filtered out: then there is no trace to continue.
    let _ = span.set_parent(parent);
}

/// The trace id (32 lowercase hex digits) of a well-formed `traceparent`.
#[must_use]
pub fn trace_id(traceparent: &str) -> Option<String> {
    parse(traceparent).map(|context| context.span().span_context().trace_id().to_string())
}

fn parse(traceparent: &str) -> Option<opentelemetry::Context> {
    // The propagator pads short ids with zeros; the W3C format has exact
    // widths of lowercase hex (later versions may append fields).
    let widths = traceparent.trim().split('-').take(4).map(|field| {
        field
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            .then_some(field.len())
    });
    if !widths.eq([Some(2), Some(32), Some(16), Some(2)]) {
        return None;
    }
    let context = TraceContextPropagator::new()
        .extract_with_context(&opentelemetry::Context::new(), &Header(traceparent));
    context.span().span_context().is_valid().then_some(context)
}

/// A carrier holding one `traceparent` value.
struct Header<'a>(&'a str);

impl Extractor for Header<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == TRACEPARENT).then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::prelude::*;

    use super::*;

    const SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// Runs `f` with an OpenTelemetry layer installed for this thread only.
    fn with_otel<T>(f: impl FnOnce() -> T) -> T {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, f)
    }

    #[test]
    fn a_traceparent_round_trips_through_a_span_that_follows_it() {
        with_otel(|| {
            let span = tracing::info_span!("job");
            follow(&span, Some(SAMPLED));
            let child = of(&span).expect("the span is in a trace");
            assert_eq!(
                trace_id(&child).as_deref(),
                Some("4bf92f3577b34da6a3ce929d0e0e4736")
            );
            // Same trace, a span of its own, still sampled.
            assert!(
                child.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
                "{child}"
            );
            assert!(!child.contains("00f067aa0ba902b7"), "{child}");
            assert!(child.ends_with("-01"), "{child}");
            // Spans entered inside it are in the same trace.
            let inner = span.in_scope(|| tracing::info_span!("inner").in_scope(current));
            assert_eq!(
                inner.as_deref().and_then(trace_id).as_deref(),
                Some("4bf92f3577b34da6a3ce929d0e0e4736")
            );
        });
    }

    #[test]
    fn a_span_without_a_parent_starts_a_trace_of_its_own() {
        with_otel(|| {
            let first = of(&tracing::info_span!("request")).expect("a trace");
            let second = of(&tracing::info_span!("request")).expect("a trace");
            assert_ne!(trace_id(&first), trace_id(&second));
            assert_eq!(first.len(), 55, "{first}");
        });
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        for bad in [
            "",
            "not a traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(trace_id(bad), None, "{bad:?}");
        }
        with_otel(|| {
            let span = tracing::info_span!("job");
            follow(&span, Some("garbage"));
            let own = of(&span).expect("a trace of its own");
            assert_ne!(
                trace_id(&own).as_deref(),
                Some("4bf92f3577b34da6a3ce929d0e0e4736")
            );
        });
    }

    #[test]
    fn without_an_opentelemetry_layer_there_is_no_trace() {
        let span = tracing::info_span!("request");
        follow(&span, Some(SAMPLED));
        assert_eq!(of(&span), None);
        assert_eq!(current(), None);
        assert_eq!(
            trace_id(SAMPLED).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }
}
