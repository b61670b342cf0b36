//! `orderUpdated` across processes: the change happens in one process (a
//! worker's settlement, another api's cancellation) and the subscriber sits
//! on a different api instance, which hears it over Redis pub/sub — also
//! when Redis restarts while it listens.
use std::time::Duration;

use serde_json::{Value, json};
use testkit::{Frame, WsClient};

use crate::harness::Cluster;

pub(crate) const ORDER_UPDATED: &str =
    "subscription($id: ID!) { orderUpdated(id: $id) { status payment { status } } }";

/// The next `(status, payment status)` the subscriber gets for `id`, or
/// `None` when the operation completed.
pub(crate) async fn next_state(socket: &mut WsClient, id: &str) -> Option<(String, String)> {
    let message = match socket.recv().await {
        Frame::Message(message) => message,
        Frame::Closed(code, reason) => panic!("the socket closed: {code} {reason}"),
    };
    if message == json!({ "type": "complete", "id": id }) {
        return None;
    }
    assert_eq!(message["type"], "next", "{message}");
    let order: &Value = &message["payload"]["data"]["orderUpdated"];
    Some((
        order["status"].as_str().unwrap_or_default().to_owned(),
        order["payment"]["status"].as_str().unwrap_or_default().to_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_another_api_instance_sees_the_worker_settle_the_order() {
    // Arrange: api A takes the order, api B holds the subscription, a
    // separate worker settles it.
    let mut cluster = Cluster::start("ws_scale_out", &[]).await;
    let api_b = cluster.start_api("api-b").await;
    let _worker = cluster.start_worker(&[]).await;
    let admin = cluster.admin().await;
    let product = cluster.create_product(&admin, "WS-1", 10).await;
    let customer = cluster.register("watcher@example.com").await;

    // Act: `sandbox_flaky` fails twice before settling, so the order is
    // still pending when the subscription starts.
    let order = cluster.place_order(&customer, &product, "sandbox_flaky").await;
    let mut socket = WsClient::open(&api_b.url(""), Some(&customer.access_token)).await;
    socket.subscribe("o", ORDER_UPDATED, json!({ "id": order })).await;

    // Assert: B's subscriber sees PAID, with the payment settled
    let mut last = None;
    while let Some(state) = next_state(&mut socket, "o").await {
        let paid = state.0 == "PAID";
        last = Some(state);
        if paid {
            break;
        }
    }
    assert_eq!(last, Some(("PAID".to_owned(), "SETTLED".to_owned())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_gets_the_final_state_though_redis_restarted_while_it_listened() {
    // Arrange: two api instances on a private Redis, no worker yet, so the
    // order stays pending; the subscriber is on B.
    let (mut cluster, mut redis) = Cluster::start_with_private_redis("ws_redis_restart", &[]).await;
    let api_b = cluster.start_api("api-b").await;
    let admin = cluster.admin().await;
    let product = cluster.create_product(&admin, "WS-2", 10).await;
    let customer = cluster.register("restart@example.com").await;
    let order = cluster.place_order(&customer, &product, "sandbox_ok").await;
    let mut socket = WsClient::open(&api_b.url(""), Some(&customer.access_token)).await;
    socket.subscribe("o", ORDER_UPDATED, json!({ "id": order })).await;
    assert_eq!(
        next_state(&mut socket, "o").await,
        Some(("PENDING_PAYMENT".to_owned(), "AUTHORIZED".to_owned()))
    );

    // Act: Redis dies; the customer cancels on api A meanwhile (its event
    // is lost with Redis); Redis comes back empty; then a worker starts
    // and releases the payment.
    redis.stop().await;
    let cancelled = cluster
        .graphql(
            Some(&customer.access_token),
            "mutation($id: ID!) { cancelOrder(id: $id) { status } }",
            json!({ "id": order }),
        )
        .await;
    assert_eq!(
        cancelled["data"]["cancelOrder"]["status"], "CANCELLED",
        "{cancelled}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.restart().await;
    let _worker = cluster.start_worker(&[]).await;

    // Assert: B's subscriber sees the cancellation, then the payment voided,
    // and the operation completes.
    let mut seen = Vec::new();
    while let Some(state) = next_state(&mut socket, "o").await {
        seen.push(state);
    }
    assert_eq!(
        seen.last(),
        Some(&("CANCELLED".to_owned(), "VOIDED".to_owned())),
        "{seen:?}"
    );
}
