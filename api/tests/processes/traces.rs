//! Traces across processes: a real api and a real worker export their spans
//! over OTLP/HTTP to a receiver in the test process (`testkit::otlp`), as
//! they would to a collector, Jaeger or Tempo. One order must make one
//! trace: its HTTP request span in the api, its settle job span and its
//! email job spans in the worker (carried there by the outbox row's
//! `traceparent` through Redis); and its emails must name that trace and the
//! request in their headers.
use std::time::Duration;

use serde_json::{Value, json};
use testkit::{OtlpReceiver, ReceivedSpan, Session, eventually};

use crate::harness::Cluster;

/// The trace and the span of a caller that sends `traceparent` itself.
const CALLER_TRACE: &str = "5ad1c0ffee0ddba11f00d5ca1ab1e000";
const CALLER_SPAN: &str = "b0a710ad5ca1ab1e";

/// Places a `sandbox_ok` order of `product` over HTTP, with `traceparent`
/// when given; returns the order's id and the request id the api answered with.
async fn place(
    cluster: &Cluster,
    customer: &Session,
    product: &str,
    traceparent: Option<&str>,
) -> (String, String) {
    let mut request = cluster
        .graphql
        .http
        .post(cluster.graphql.url("/graphql"))
        .bearer_auth(&customer.access_token)
        .json(&json!({
            "query": "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id status } }",
            "variables": { "input": {
                "lines": [{ "productId": product, "quantity": 1 }],
                "paymentToken": "sandbox_ok",
                "idempotencyKey": uuid::Uuid::now_v7().to_string(),
            }},
        }));
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let response = request.send().await.expect("placeOrder sent");
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("the api answers with X-Request-Id")
        .to_owned();
    let body: Value = response.json().await.expect("JSON body");
    let order = body["data"]["placeOrder"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("placeOrder accepted: {body}"))
        .to_owned();
    (order, request_id)
}

/// Whether `span` is `ancestor` or lies below it in `spans`.
fn descends_from(spans: &[ReceivedSpan], span: &ReceivedSpan, ancestor: &ReceivedSpan) -> bool {
    let mut current = Some(span);
    for _ in 0..32 {
        let Some(at) = current else { return false };
        if at.span_id == ancestor.span_id {
            return true;
        }
        current = at
            .parent_span_id
            .as_ref()
            .and_then(|parent| spans.iter().find(|s| &s.span_id == parent));
    }
    false
}

/// The spans of one order's trace, once all of them arrived: the request
/// span (found by its request id), one settle job and two email jobs
/// (confirmation, receipt).
struct OrderTrace {
    request: ReceivedSpan,
    settle: ReceivedSpan,
    emails: Vec<ReceivedSpan>,
    all: Vec<ReceivedSpan>,
}

async fn trace_of(receiver: &OtlpReceiver, request_id: &str) -> OrderTrace {
    eventually(Duration::from_secs(30), "the order's spans exported", || async {
        let all = receiver.spans();
        let request = all
            .iter()
            .find(|s| s.name == "POST /graphql" && s.attribute("request_id") == Some(request_id))
            .cloned()
            .ok_or_else(|| format!("no request span yet among {} spans", all.len()))?;
        let in_trace = |name: &str| -> Vec<ReceivedSpan> {
            all.iter()
                .filter(|s| s.name == name && s.trace_id == request.trace_id)
                .cloned()
                .collect()
        };
        let settles = in_trace("settle_payment.v1");
        let emails = in_trace("send_email.v1");
        match (settles.as_slice(), emails.len()) {
            ([settle], 2) => Ok(OrderTrace {
                request: request.clone(),
                settle: settle.clone(),
                emails,
                all: all.clone(),
            }),
            _ => Err(format!(
                "{} settle and {} email job spans in trace {} so far",
                settles.len(),
                emails.len(),
                request.trace_id
            )),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_one_trace_from_its_request_through_its_jobs_to_its_emails() {
    // Arrange: api and worker exporting to the receiver, flushing often
    let receiver = OtlpReceiver::start().await;
    let endpoint = receiver.endpoint();
    let mut cluster = Cluster::start(
        "traces",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let _worker = cluster.start_worker(&[]).await;
    let admin = cluster.admin().await;
    let product = cluster.create_product(&admin, "TRACES-1", 10).await;
    let customer = cluster.register("traces@example.com").await;

    // Act: an order from a caller without trace context, and one from a
    // caller that sends its own
    let (order, request_id) = place(&cluster, &customer, &product, None).await;
    let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let (joined_order, joined_request_id) = place(&cluster, &customer, &product, Some(&caller)).await;
    let orders = [
        (order.clone(), customer.clone()),
        (joined_order.clone(), customer.clone()),
    ];
    cluster.wait_until_paid(&orders, Duration::from_secs(60)).await;
    cluster
        .wait_for_mail("Payment received", 2, Duration::from_secs(60))
        .await;

    // Assert: each order's request, settle job and email jobs share one trace
    let own = trace_of(&receiver, &request_id).await;
    let joined = trace_of(&receiver, &joined_request_id).await;
    for trace in [&own, &joined] {
        assert_eq!(trace.request.service, "storefront-api", "{:?}", trace.request);
        assert_eq!(trace.request.attribute("http.route"), Some("/graphql"));
        assert_eq!(trace.request.attribute("http.response.status_code"), Some("200"));
        assert_eq!(trace.settle.service, "storefront-worker", "{:?}", trace.settle);
        assert_eq!(trace.settle.attribute("outcome"), Some("succeeded"));
        // The settle job and the confirmation email were written by the
        // request; the receipt by the settle job.
        assert!(
            descends_from(&trace.all, &trace.settle, &trace.request),
            "the settle job continues the request: {:?}",
            trace.settle
        );
        let (from_request, from_settle): (Vec<_>, Vec<_>) = trace
            .emails
            .iter()
            .partition(|email| email.parent_span_id.as_ref() == Some(&trace.request.span_id));
        assert_eq!(
            from_request.len(),
            1,
            "the confirmation's job is the request's child: {:?}",
            trace.emails
        );
        assert_eq!(from_settle.len(), 1, "{:?}", trace.emails);
        assert!(
            descends_from(&trace.all, from_settle[0], &trace.settle),
            "the receipt's job continues the settle job: {:?}",
            trace.emails
        );
        for email in &trace.emails {
            assert_eq!(email.service, "storefront-worker");
        }
    }
    assert_ne!(
        own.request.trace_id, joined.request.trace_id,
        "two orders, two traces"
    );
    assert_eq!(
        own.request.parent_span_id, None,
        "a request without traceparent starts a trace"
    );
    assert_eq!(
        joined.request.trace_id, CALLER_TRACE,
        "the caller's traceparent is honoured"
    );
    assert_eq!(joined.request.parent_span_id.as_deref(), Some(CALLER_SPAN));

    // ... and the emails say which trace and request they came from
    for (order, request_id, trace) in [
        (&order, &request_id, &own),
        (&joined_order, &joined_request_id, &joined),
    ] {
        for subject in [
            format!("Order {order} received"),
            format!("Payment received for order {order}"),
        ] {
            let emails = cluster.smtp.about(&subject);
            assert_eq!(emails.len(), 1, "one {subject:?}");
            let email = &emails[0];
            assert_eq!(
                email.header("X-Storefront-Trace-Id"),
                Some(trace.request.trace_id.as_str()),
                "{subject}: {:?}",
                email.headers
            );
            assert_eq!(
                email.header("X-Request-Id"),
                Some(request_id.as_str()),
                "{subject}"
            );
        }
    }
}
