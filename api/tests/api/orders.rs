use std::sync::Arc;

use api::throttle::rules::{Limit, Rate};
use entity::orders::OrderStatus;
use entity::tables::{outbox, product_variants};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use testkit::Backend;

use crate::helpers::{Session, TestApp, error_code, on_both_backends, roomy_cost_bucket};

const PLACE: &str = "mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) {
    id status total { amountMinor formatted }
    lines { quantity unitPrice { amountMinor } subtotal { amountMinor } product { sku } }
    payment { status amount { amountMinor } attempts lastError }
  }
}";

fn order_input(product: &str, quantity: i32, token: &str, key: &str) -> Value {
    json!({ "input": { "lines": [{ "productId": product, "quantity": quantity }], "paymentToken": token, "idempotencyKey": key } })
}

/// The stock of a product made by `create_product` (its one variant has
/// the product's id), or of a variant by its id.
async fn stock_of(app: &TestApp, product_or_variant: &str) -> i32 {
    let id = uuid::Uuid::parse_str(product_or_variant).expect("uuid");
    product_variants::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .expect("query")
        .expect("exists")
        .stock
}

async fn place(app: &TestApp, who: &Session, product: &str, quantity: i32, token: &str, key: &str) -> Value {
    app.graphql_as(who, PLACE, order_input(product, quantity, token, key))
        .await
}

async fn an_order_reserves_stock_authorises_payment_and_queues_its_jobs(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let product = app.create_product(&admin, "MUG-1", 1250, 5).await;
    let customer = app.register("buyer@example.com").await;

    let body = place(&app, &customer, &product, 2, "sandbox_ok", "k-1").await;
    let order = &body["data"]["placeOrder"];
    assert_eq!(order["status"], "PENDING_PAYMENT", "{body}");
    assert_eq!(
        order["total"],
        json!({ "amountMinor": 2500, "formatted": "€25.00" })
    );
    assert_eq!(
        order["lines"],
        json!([{ "quantity": 2, "unitPrice": { "amountMinor": 1250 }, "subtotal": { "amountMinor": 2500 }, "product": { "sku": "MUG-1" } }])
    );
    assert_eq!(
        order["payment"],
        json!({ "status": "AUTHORIZED", "amount": { "amountMinor": 2500 }, "attempts": 0, "lastError": null })
    );
    assert_eq!(stock_of(&app, &product).await, 3);
    let jobs: Vec<String> = outbox::Entity::find()
        .all(&app.state.db)
        .await
        .expect("outbox")
        .into_iter()
        .map(|r| r.job_name)
        .collect();
    assert!(
        jobs.contains(&"settle_payment.v1".to_owned()) && jobs.contains(&"send_email.v1".to_owned()),
        "{jobs:?}"
    );

    let again = place(&app, &customer, &product, 2, "sandbox_ok", "k-1").await;
    assert_eq!(
        again["data"]["placeOrder"]["id"], order["id"],
        "same key, same order"
    );
    assert_eq!(stock_of(&app, &product).await, 3, "nothing reserved twice");
}
on_both_backends!(
    place_order,
    an_order_reserves_stock_authorises_payment_and_queues_its_jobs
);

async fn refused_orders_write_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let product = app.create_product(&admin, "TEE-1", 2000, 2).await;
    let customer = app.register("unlucky@example.com").await;
    let outbox_before = outbox::Entity::find().count(&app.state.db).await.expect("count");

    let declined = place(&app, &customer, &product, 1, "sandbox_declined", "d-1").await;
    assert_eq!(error_code(&declined), "PAYMENT_DECLINED");
    let unknown_token = place(&app, &customer, &product, 1, "tok_visa", "d-2").await;
    assert_eq!(error_code(&unknown_token), "BAD_USER_INPUT");
    let too_many = place(&app, &customer, &product, 3, "sandbox_ok", "d-3").await;
    assert_eq!(error_code(&too_many), "OUT_OF_STOCK");
    assert_eq!(too_many["errors"][0]["extensions"]["available"], 2);
    let zero = place(&app, &customer, &product, 0, "sandbox_ok", "d-4").await;
    assert_eq!(error_code(&zero), "BAD_USER_INPUT");
    let missing = place(
        &app,
        &customer,
        &uuid::Uuid::now_v7().to_string(),
        1,
        "sandbox_ok",
        "d-5",
    )
    .await;
    assert_eq!(error_code(&missing), "NOT_FOUND");
    let anonymous = app
        .graphql(PLACE, order_input(&product, 1, "sandbox_ok", "d-6"))
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");

    assert_eq!(stock_of(&app, &product).await, 2);
    let orders = app
        .graphql_as(&customer, "{ orders { totalCount } }", json!({}))
        .await;
    assert_eq!(orders["data"]["orders"]["totalCount"], 0);
    assert_eq!(
        outbox::Entity::find().count(&app.state.db).await.expect("count"),
        outbox_before
    );
}
on_both_backends!(refused_orders, refused_orders_write_nothing);

async fn forty_customers_race_for_fifteen_units(backend: Backend) {
    // Forty sign-ups from one address: more than a shop allows an hour.
    let app = Arc::new(
        TestApp::spawn_with(backend, |config| {
            config.rate_limits.set(Limit::RegisterIp, Rate::Off);
            // A sign-up costs about 100 points: forty at once drain this
            // address's query cost bucket four times over.
            config.cost_bucket = roomy_cost_bucket();
        })
        .await,
    );
    let admin = app.admin().await;
    let product = Arc::new(app.create_product(&admin, "RARE-1", 999, 15).await);
    let mut customers = Vec::new();
    for i in 0..40 {
        customers.push(app.register(&format!("racer{i}@example.com")).await);
    }

    let attempts = customers.into_iter().map(|customer| {
        let (app, product) = (Arc::clone(&app), Arc::clone(&product));
        tokio::spawn(async move { place(&app, &customer, &product, 1, "sandbox_ok", "race").await })
    });
    let results: Vec<Value> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("ran"))
        .collect();

    let placed = results
        .iter()
        .filter(|b| b["data"]["placeOrder"]["id"].is_string())
        .count();
    assert_eq!(placed, 15, "exactly the stock on hand is sold");
    for body in results.iter().filter(|b| b["errors"].is_array()) {
        assert_eq!(error_code(body), "OUT_OF_STOCK", "{body}");
    }
    assert_eq!(stock_of(&app, &product).await, 0);
    let all = app
        .graphql_as(&admin, "{ orders { totalCount } }", json!({}))
        .await;
    assert_eq!(all["data"]["orders"]["totalCount"], 15);
}
on_both_backends!(stock_race, forty_customers_race_for_fifteen_units);

async fn concurrent_retries_with_one_key_make_one_order(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let admin = app.admin().await;
    let product = Arc::new(app.create_product(&admin, "LAMP-1", 4500, 10).await);
    let customer = Arc::new(app.register("impatient@example.com").await);

    let attempts = (0..5).map(|_| {
        let (app, product, customer) = (Arc::clone(&app), Arc::clone(&product), Arc::clone(&customer));
        tokio::spawn(async move { place(&app, &customer, &product, 2, "sandbox_ok", "double-click").await })
    });
    let results: Vec<Value> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("ran"))
        .collect();

    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|b| {
            b["data"]["placeOrder"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{b}"))
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "every retry answers with the same order");
    assert_eq!(stock_of(&app, &product).await, 8, "reserved once");
    let mine = app
        .graphql_as(&customer, "{ orders { totalCount } }", json!({}))
        .await;
    assert_eq!(mine["data"]["orders"]["totalCount"], 1);
}
on_both_backends!(idempotent_retries, concurrent_retries_with_one_key_make_one_order);

async fn customers_cannot_reach_each_others_orders(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let product = app.create_product(&admin, "BAG-1", 3000, 5).await;
    let owner = app.register("owner@example.com").await;
    let other = app.register("snoop@example.com").await;
    let placed = place(&app, &owner, &product, 1, "sandbox_ok", "mine").await;
    let id = placed["data"]["placeOrder"]["id"]
        .as_str()
        .expect("order id")
        .to_owned();

    let read = "query($id: ID!) { order(id: $id) { id status } }";
    let snooped = app.graphql_as(&other, read, json!({ "id": id })).await;
    assert_eq!(
        snooped["data"]["order"],
        json!(null),
        "another customer's order is not found: {snooped}"
    );
    let list = app
        .graphql_as(
            &other,
            "{ orders { totalCount edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(list["data"]["orders"]["totalCount"], 0);
    let cancel = "mutation($id: ID!) { cancelOrder(id: $id) { status } }";
    assert_eq!(
        error_code(&app.graphql_as(&other, cancel, json!({ "id": id })).await),
        "NOT_FOUND"
    );
    let fulfil = "mutation($id: ID!) { fulfillOrder(id: $id) { status } }";
    assert_eq!(
        error_code(&app.graphql_as(&owner, fulfil, json!({ "id": id })).await),
        "FORBIDDEN"
    );
    assert_eq!(
        error_code(&app.graphql(read, json!({ "id": id })).await),
        "UNAUTHENTICATED"
    );

    assert_eq!(
        app.graphql_as(&owner, read, json!({ "id": id })).await["data"]["order"]["id"],
        id.as_str()
    );
    assert_eq!(
        app.graphql_as(&admin, read, json!({ "id": id })).await["data"]["order"]["id"],
        id.as_str()
    );
    assert_eq!(
        stock_of(&app, &product).await,
        4,
        "the snoop's cancel changed nothing"
    );
}
on_both_backends!(ownership, customers_cannot_reach_each_others_orders);

/// Runs the `release_payment.v1` job that cancelling `order_id` wrote.
async fn release_payment_of(app: &TestApp, order_id: &str) {
    use entity::jobs::{Job, ReleasePayment};
    use sea_orm::{ColumnTrait, QueryFilter};
    let row = outbox::Entity::find()
        .filter(outbox::Column::JobName.eq(ReleasePayment::NAME))
        .all(&app.state.db)
        .await
        .expect("outbox")
        .into_iter()
        .find(|row| row.payload["order_id"] == order_id)
        .expect("cancelling wrote a release job");
    let job: ReleasePayment = serde_json::from_value(row.payload).expect("payload");
    let outcome = entity::payments::release_payment(&app.state.db, app.state.gateway.as_ref(), &job)
        .await
        .expect("release");
    assert_eq!(outcome, entity::jobs::JobOutcome::Done);
}

async fn cancelling_returns_stock_and_fulfilling_needs_payment(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let product = app.create_product(&admin, "CAP-1", 1800, 4).await;
    let customer = app.register("changed-mind@example.com").await;
    let cancel = "mutation($id: ID!) { cancelOrder(id: $id) { status payment { status } } }";
    let fulfil = "mutation($id: ID!) { fulfillOrder(id: $id) { status } }";

    let first = place(&app, &customer, &product, 3, "sandbox_ok", "c-1").await;
    let first_id = first["data"]["placeOrder"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        error_code(&app.graphql_as(&admin, fulfil, json!({ "id": first_id })).await),
        "CONFLICT",
        "not paid yet"
    );
    let cancelled = app.graphql_as(&customer, cancel, json!({ "id": first_id })).await;
    assert_eq!(cancelled["data"]["cancelOrder"]["status"], "CANCELLED");
    // The worker releases the payment (a job, outside the cancelling
    // transaction); here the test plays its part.
    release_payment_of(&app, &first_id).await;
    let read = "query($id: ID!) { order(id: $id) { status payment { status } } }";
    assert_eq!(
        app.graphql_as(&customer, read, json!({ "id": first_id })).await["data"]["order"],
        json!({ "status": "CANCELLED", "payment": { "status": "VOIDED" } })
    );
    assert_eq!(stock_of(&app, &product).await, 4, "stock returned");
    let twice = app.graphql_as(&customer, cancel, json!({ "id": first_id })).await;
    assert_eq!(error_code(&twice), "CONFLICT");
    assert_eq!(stock_of(&app, &product).await, 4, "returned once");

    let second = place(&app, &customer, &product, 1, "sandbox_ok", "c-2").await;
    let second_id = second["data"]["placeOrder"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // The worker settles payments; here the test plays its part.
    let uuid: entity::ids::OrderId = second_id.parse().expect("id");
    entity::orders::transition(&app.state.db, uuid, OrderStatus::Paid)
        .await
        .expect("paid");
    let fulfilled = app.graphql_as(&admin, fulfil, json!({ "id": second_id })).await;
    assert_eq!(fulfilled["data"]["fulfillOrder"]["status"], "FULFILLED");
    assert_eq!(
        error_code(
            &app.graphql_as(&customer, cancel, json!({ "id": second_id }))
                .await
        ),
        "CONFLICT"
    );

    let paid_only = app
        .graphql_as(
            &customer,
            "{ orders(status: FULFILLED) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(paid_only["data"]["orders"]["totalCount"], 1);
}
on_both_backends!(
    cancel_and_fulfil,
    cancelling_returns_stock_and_fulfilling_needs_payment
);

const NESTED: &str = "query($first: Int) {
  orders(first: $first) {
    edges { node { id status total { formatted } payment { status attempts }
      lines { quantity subtotal { formatted } product { id sku name price { formatted } } } } }
  }
}";

async fn a_nested_order_query_runs_a_bounded_number_of_statements(backend: Backend) {
    // Twenty orders in a few seconds, about 100 points each: twice what one
    // customer's query cost bucket holds.
    let app = TestApp::spawn_with(backend, |config| config.cost_bucket = roomy_cost_bucket()).await;
    let admin = app.admin().await;
    let a = app.create_product(&admin, "NEST-A", 100, 100).await;
    let b = app.create_product(&admin, "NEST-B", 200, 100).await;
    let customer = app.register("nested@example.com").await;
    for i in 0..20 {
        let input = json!({ "input": {
            "lines": [{ "productId": a, "quantity": 1 }, { "productId": b, "quantity": 2 }],
            "paymentToken": "sandbox_ok", "idempotencyKey": format!("n-{i}") } });
        let body = app.graphql_as(&customer, PLACE, input).await;
        assert!(body["data"]["placeOrder"]["id"].is_string(), "{body}");
    }

    // The session check reads the user's token version at most every 2 s;
    // a request just before each measurement keeps it out of the count.
    app.graphql_as(&customer, "{ me { id } }", json!({})).await;
    let before = app.statements();
    let twenty = app.graphql_as(&customer, NESTED, json!({ "first": 20 })).await;
    let for_twenty = app.statements() - before;
    let edges = twenty["data"]["orders"]["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 20);
    assert!(
        edges
            .iter()
            .all(|e| e["node"]["lines"].as_array().map(Vec::len) == Some(2))
    );

    app.graphql_as(&customer, "{ me { id } }", json!({})).await;
    let before = app.statements();
    app.graphql_as(&customer, NESTED, json!({ "first": 2 })).await;
    let for_two = app.statements() - before;

    // orders + lines + products + payments: one statement per level.
    assert!(
        for_twenty <= 4,
        "20 orders with lines, products and payments took {for_twenty} statements"
    );
    assert_eq!(for_twenty, for_two, "the count does not grow with the page");
}
on_both_backends!(
    no_n_plus_one,
    a_nested_order_query_runs_a_bounded_number_of_statements
);
