//! GraphQL over WebSocket (`graphql-transport-ws` at `/graphql/ws`): the
//! protocol's rules and close codes, and `orderUpdated` for its owner, an
//! admin, another customer and an anonymous socket. On PostgreSQL the order
//! events travel over Redis pub/sub; on SQLite over the in-process channel.
use serde_json::{Value, json};
use testkit::{Backend, Frame, WsClient};

use crate::helpers::{Session, TestApp, on_both_backends};

const ORDER_UPDATED: &str =
    "subscription($id: ID!) { orderUpdated(id: $id) { id status payment { status } } }";

fn message(frame: Frame) -> Value {
    match frame {
        Frame::Message(message) => message,
        Frame::Closed(code, reason) => panic!("expected a message, the socket closed: {code} {reason}"),
    }
}

#[tokio::test]
async fn the_protocol_refuses_what_breaks_its_rules_with_its_close_codes() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let customer = app.register("ws@example.com").await;

    // No graphql-transport-ws subprotocol offered: 4406.
    let mut socket = WsClient::connect(&app.address, None).await;
    assert_eq!(socket.closed().await.0, 4406);

    // Subscribe before connection_init was acknowledged: 4401.
    let mut socket = WsClient::connect(&app.address, Some("graphql-transport-ws")).await;
    socket.subscribe("1", "{ __typename }", json!({})).await;
    assert_eq!(socket.closed().await.0, 4401);

    // A second connection_init: 4429.
    let mut socket = WsClient::open(&app.address, None).await;
    socket.init(None).await;
    assert_eq!(socket.closed().await.0, 4429);

    // An invalid access token in connection_init: 4403.
    let mut socket = WsClient::connect(&app.address, Some("graphql-transport-ws")).await;
    socket.init(Some("not-a-token")).await;
    assert_eq!(socket.closed().await.0, 4403);

    // Not a protocol message: 4400.
    let mut socket = WsClient::open(&app.address, None).await;
    socket.send_text("{\"type\": \"subscribe\", \"id\": 7}").await;
    assert_eq!(socket.closed().await.0, 4400);
    let mut socket = WsClient::open(&app.address, Some(&customer.access_token)).await;
    socket.send_text("not json").await;
    assert_eq!(socket.closed().await.0, 4400);

    // A subscribe whose id is still running: 4409.
    let order = place_order(&app, &customer).await;
    let mut socket = WsClient::open(&app.address, Some(&customer.access_token)).await;
    socket
        .subscribe("same", ORDER_UPDATED, json!({ "id": order }))
        .await;
    assert_eq!(message(socket.recv().await)["type"], "next");
    socket
        .subscribe("same", ORDER_UPDATED, json!({ "id": order }))
        .await;
    assert_eq!(socket.closed().await.0, 4409);
}

#[tokio::test]
async fn a_socket_that_never_initialises_is_closed_with_4408() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut socket = WsClient::connect(&app.address, Some("graphql-transport-ws")).await;
    let started = std::time::Instant::now();
    assert_eq!(socket.closed().await.0, 4408);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "after the initialisation timeout"
    );
}

#[tokio::test]
async fn pings_get_pongs_queries_run_once_and_the_limits_hold() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let customer = app.register("limits@example.com").await;

    let mut socket = WsClient::open(&app.address, Some(&customer.access_token)).await;
    socket
        .send(&json!({ "type": "ping", "payload": { "n": 1 } }))
        .await;
    assert_eq!(
        message(socket.recv().await),
        json!({ "type": "pong", "payload": { "n": 1 } })
    );

    // A query over the socket: one result, with what it cost the user's
    // fresh bucket, then complete.
    socket.subscribe("q", "{ me { email } }", json!({})).await;
    let cost = json!({ "requestedQueryCost": 1, "actualQueryCost": 1, "throttleStatus": {
        "maximumAvailable": 1000.0, "currentlyAvailable": 999, "restoreRate": 50.0 } });
    assert_eq!(
        message(socket.recv().await),
        json!({ "type": "next", "id": "q", "payload": {
            "data": { "me": { "email": "limits@example.com" } },
            "extensions": { "cost": cost },
        } })
    );
    assert_eq!(
        message(socket.recv().await),
        json!({ "type": "complete", "id": "q" })
    );

    // A document that does not validate: one error message, no next.
    socket.subscribe("bad", "subscription { nope }", json!({})).await;
    let refused = message(socket.recv().await);
    assert_eq!(
        (refused["type"].as_str(), refused["id"].as_str()),
        (Some("error"), Some("bad")),
        "{refused}"
    );

    // A document nested too deep is refused before it runs, as over HTTP.
    let deep = format!("{}id{}", "{ me ".repeat(12), " }".repeat(12));
    socket.subscribe("deep", &deep, json!({})).await;
    let refused = message(socket.recv().await);
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "deep", "{refused}");
    assert_eq!(
        refused["payload"][0]["message"], "Query is nested too deep.",
        "{refused}"
    );

    // 20 operations at once per socket; the 21st is refused, the socket stays.
    let order = place_order(&app, &customer).await;
    for n in 0..20 {
        socket
            .subscribe(&format!("op{n}"), ORDER_UPDATED, json!({ "id": order }))
            .await;
        assert_eq!(message(socket.recv().await)["type"], "next");
    }
    socket
        .subscribe("op20", ORDER_UPDATED, json!({ "id": order }))
        .await;
    let refused = message(socket.recv().await);
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    // Completing one makes room again.
    socket.send(&json!({ "type": "complete", "id": "op0" })).await;
    socket
        .subscribe("op21", ORDER_UPDATED, json!({ "id": order }))
        .await;
    assert_eq!(message(socket.recv().await)["id"], "op21");

    // Ten sockets per user; the eleventh is refused at init.
    let mut sockets = Vec::new();
    for _ in 0..9 {
        sockets.push(WsClient::open(&app.address, Some(&customer.access_token)).await);
    }
    let mut eleventh = WsClient::connect(&app.address, Some("graphql-transport-ws")).await;
    eleventh.init(Some(&customer.access_token)).await;
    assert_eq!(eleventh.closed().await.0, 4403);
    // Closing one gives its place back.
    drop(sockets.pop());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let _again = WsClient::open(&app.address, Some(&customer.access_token)).await;
}

#[tokio::test]
async fn the_server_pings_an_idle_socket_so_proxies_keep_it_open() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut socket = WsClient::open(&app.address, None).await;

    // Idle for longer than the 15 s keepalive, then still usable.
    tokio::time::sleep(std::time::Duration::from_secs(16)).await;
    socket.send(&json!({ "type": "ping" })).await;
    assert_eq!(message(socket.recv().await), json!({ "type": "pong" }));
    assert!(
        socket.pings_answered >= 1,
        "the server pinged while the socket was idle"
    );
}

async fn place_order(app: &TestApp, customer: &Session) -> String {
    place_order_paid_with(app, customer, "sandbox_ok").await
}

async fn place_order_paid_with(app: &TestApp, customer: &Session, token: &str) -> String {
    let admin = app.admin().await;
    let sku = format!("WS-{}", uuid::Uuid::now_v7().simple());
    let product = app.create_product(&admin, &sku, 1500, 10).await;
    let body = app
        .graphql_as(
            customer,
            "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }",
            json!({ "input": {
                "lines": [{ "productId": product, "quantity": 1 }],
                "paymentToken": token,
                "idempotencyKey": uuid::Uuid::now_v7().to_string(),
            }}),
        )
        .await;
    body["data"]["placeOrder"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("order placed: {body}"))
        .to_owned()
}

/// The statuses a subscriber saw, up to and including `until`.
async fn statuses_until(socket: &mut WsClient, id: &str, until: &str) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    loop {
        let next = message(socket.recv().await);
        assert_eq!(
            (next["type"].as_str(), next["id"].as_str()),
            (Some("next"), Some(id)),
            "{next}"
        );
        let order = &next["payload"]["data"]["orderUpdated"];
        let status = order["status"].as_str().unwrap_or_default().to_owned();
        let payment = order["payment"]["status"].as_str().unwrap_or_default().to_owned();
        let done = status == until;
        seen.push((status, payment));
        if done {
            return seen;
        }
    }
}

async fn the_owner_and_an_admin_watch_an_order_to_its_end_and_nobody_else_sees_it(backend: Backend) {
    // Arrange: the in-process worker settles the order; `sandbox_flaky`
    // fails twice first, so the order is pending for a moment.
    let app = TestApp::spawn_with(backend, |config| {
        config.embedded_worker = true;
        if backend == Backend::Postgres {
            config.worker.redis_url = Some(testkit::redis_url());
            config.worker.queue_namespace = format!("ws-{}", uuid::Uuid::now_v7().simple());
        }
    })
    .await;
    let owner = app.register("owner@example.com").await;
    let other = app.register("other@example.com").await;
    let admin = app.admin().await;
    let order = place_order_paid_with(&app, &owner, "sandbox_flaky").await;

    // Act: the owner and an admin watch it; another customer and an
    // anonymous socket try to.
    let mut watcher = WsClient::open(&app.address, Some(&owner.access_token)).await;
    watcher
        .subscribe("mine", ORDER_UPDATED, json!({ "id": order }))
        .await;
    let mut admin_watcher = WsClient::open(&app.address, Some(&admin.access_token)).await;
    admin_watcher
        .subscribe("any", ORDER_UPDATED, json!({ "id": order }))
        .await;

    let mut intruder = WsClient::open(&app.address, Some(&other.access_token)).await;
    intruder
        .subscribe("theirs", ORDER_UPDATED, json!({ "id": order }))
        .await;
    let refused = message(intruder.recv().await);
    let mut anonymous = WsClient::open(&app.address, None).await;
    anonymous
        .subscribe("who", ORDER_UPDATED, json!({ "id": order }))
        .await;
    let anonymous_refused = message(anonymous.recv().await);

    // Assert: both watchers see it settle, each change once, in order
    let seen = statuses_until(&mut watcher, "mine", "PAID").await;
    assert_eq!(
        seen.last(),
        Some(&("PAID".to_owned(), "SETTLED".to_owned())),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .all(|s| *s == ("PENDING_PAYMENT".into(), "AUTHORIZED".into())
                || *s == ("PAID".into(), "SETTLED".into())),
        "{seen:?}"
    );
    assert!(
        seen.windows(2).all(|pair| pair[0] != pair[1]),
        "no repeats: {seen:?}"
    );
    let admin_seen = statuses_until(&mut admin_watcher, "any", "PAID").await;
    assert_eq!(admin_seen.last(), seen.last());

    // Fulfilling ends the story: one last state, then complete.
    let fulfilled = app
        .graphql_as(
            &admin,
            "mutation($id: ID!) { fulfillOrder(id: $id) { status } }",
            json!({ "id": order }),
        )
        .await;
    assert_eq!(
        fulfilled["data"]["fulfillOrder"]["status"], "FULFILLED",
        "{fulfilled}"
    );
    assert_eq!(
        statuses_until(&mut watcher, "mine", "FULFILLED").await,
        vec![("FULFILLED".to_owned(), "SETTLED".to_owned())]
    );
    assert_eq!(
        message(watcher.recv().await),
        json!({ "type": "complete", "id": "mine" })
    );

    // Another customer and an anonymous socket got one error and no data.
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "NOT_FOUND");
    assert_eq!(anonymous_refused["type"], "error", "{anonymous_refused}");
    assert_eq!(
        anonymous_refused["payload"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
}
on_both_backends!(
    order_updated,
    the_owner_and_an_admin_watch_an_order_to_its_end_and_nobody_else_sees_it
);

#[tokio::test]
async fn beyond_the_instances_socket_limit_an_upgrade_gets_503() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| config.max_sockets = 2).await;
    let first = WsClient::open(&app.address, None).await;
    let _second = WsClient::open(&app.address, None).await;

    let refused = app
        .client
        .get(app.url("/graphql/ws"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", "graphql-transport-ws")
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );

    // A closed socket gives its place back.
    drop(first);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let _third = WsClient::open(&app.address, None).await;
}
