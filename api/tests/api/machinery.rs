//! The admin's view of the job machinery: `queues`, `workers`,
//! `outboxBacklog` and `deadJobCount` — admins only.
use std::time::Duration;

use entity::ids::OutboxId;
use entity::jobs::Envelope;
use entity::tables::worker_heartbeats;
use entity::workers::Heartbeat;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use testkit::{Backend, eventually};

use crate::helpers::{TestApp, error_code, on_both_backends};

const MACHINERY: &str = "{
  queues { name depth due oldestDueAgeSeconds }
  workers { id queues startedAt lastHeartbeatAt alive runningJobs }
  outboxBacklog
  deadJobCount
}";

fn queue<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["data"]["queues"]
        .as_array()
        .and_then(|queues| queues.iter().find(|q| q["name"] == name))
        .unwrap_or_else(|| panic!("queue {name} in {body}"))
}

async fn heartbeat(app: &TestApp, id: &str, running_jobs: u32) {
    let beat = Heartbeat {
        worker_id: id.to_owned(),
        queues: vec!["emails".into(), "settlements".into()],
        started_at: chrono::Utc::now(),
        running_jobs,
    };
    entity::workers::beat(&app.state.db, &beat)
        .await
        .expect("a heartbeat is written");
}

async fn admins_see_what_waits_who_works_and_what_died(backend: Backend) {
    // Arrange: no worker and no queue in this process, so jobs wait in the outbox.
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let product = app.create_product(&admin, "MACH-1", 500, 5).await;
    let customer = app.register("machinery@example.com").await;
    let placed = app
        .graphql_as(
            &customer,
            "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }",
            json!({ "input": { "lines": [{ "productId": product, "quantity": 1 }],
                "paymentToken": "sandbox_ok", "idempotencyKey": "machinery-1" } }),
        )
        .await;
    assert!(placed["data"]["placeOrder"]["id"].is_string(), "{placed}");
    let dead = Envelope {
        outbox_id: OutboxId::new(),
        job_name: "send_email.v1".into(),
        attempt: 6,
        payload: json!({}),
        traceparent: None,
    };
    entity::dead_jobs::bury(&app.state.db, &dead, "the SMTP server said no")
        .await
        .expect("buried");
    heartbeat(&app, "host-1-alive", 2).await;
    heartbeat(&app, "host-2-gone", 0).await;
    worker_heartbeats::Entity::update_many()
        .col_expr(
            worker_heartbeats::Column::LastHeartbeatAt,
            Expr::value(chrono::Utc::now() - chrono::Duration::minutes(5)),
        )
        .filter(worker_heartbeats::Column::Id.eq("host-2-gone"))
        .exec(&app.state.db)
        .await
        .expect("aged");

    // Act
    let body = app.graphql_as(&admin, MACHINERY, json!({})).await;

    // Assert
    assert!(body["errors"].is_null(), "{body}");
    let settlements = queue(&body, "settlements");
    assert_eq!(
        settlements["due"], 1,
        "the settle job waits in the outbox: {body}"
    );
    assert_eq!(settlements["depth"], Value::Null, "this process has no queue");
    assert!(
        settlements["oldestDueAgeSeconds"]
            .as_i64()
            .is_some_and(|age| age >= 0),
        "{body}"
    );
    let emails = queue(&body, "emails");
    assert!(
        emails["due"].as_i64().is_some_and(|due| due >= 1),
        "the welcome email: {body}"
    );
    assert_eq!(
        body["data"]["outboxBacklog"].as_i64(),
        Some(settlements["due"].as_i64().unwrap_or(0) + emails["due"].as_i64().unwrap_or(0)),
        "every waiting row is due now: {body}"
    );
    assert_eq!(body["data"]["deadJobCount"], 1);
    let workers = body["data"]["workers"].as_array().expect("workers");
    assert_eq!(workers.len(), 2, "{body}");
    assert_eq!(workers[0]["id"], "host-1-alive", "latest heartbeat first");
    assert_eq!(workers[0]["alive"], true);
    assert_eq!(workers[0]["runningJobs"], 2);
    assert_eq!(workers[0]["queues"], json!(["emails", "settlements"]));
    assert_eq!(workers[1]["id"], "host-2-gone");
    assert_eq!(workers[1]["alive"], false, "five minutes without a heartbeat");
}
on_both_backends!(admins_see_what_waits_who_works_and_what_died);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_and_anonymous_callers_are_refused_the_machinery() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let customer = app.register("curious@example.com").await;
    for field in [
        "{ queues { name } }",
        "{ workers { id } }",
        "{ outboxBacklog }",
        "{ deadJobCount }",
    ] {
        let as_customer = app.graphql_as(&customer, field, json!({})).await;
        let anonymous = app.graphql(field, json!({})).await;

        assert_eq!(error_code(&as_customer), "FORBIDDEN", "{field}: {as_customer}");
        assert_eq!(as_customer["data"], Value::Null, "{field}: {as_customer}");
        assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{field}: {anonymous}");
        assert_eq!(anonymous["data"], Value::Null, "{field}: {anonymous}");
    }
}

async fn an_embedded_worker_heartbeats_and_its_queues_have_depths(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.embedded_worker = true;
        if backend == Backend::Postgres {
            config.worker.redis_url = Some(std::env::var("REDIS_URL").expect("REDIS_URL: run scripts/test"));
            config.worker.queue_namespace = format!("test-{}", uuid::Uuid::now_v7().simple());
        }
    })
    .await;
    let admin = app.admin().await;

    let body = eventually(Duration::from_secs(10), "a live worker listed", || async {
        let body = app.graphql_as(&admin, MACHINERY, json!({})).await;
        let alive = body["data"]["workers"]
            .as_array()
            .is_some_and(|workers| workers.iter().any(|w| w["alive"] == true));
        if alive { Ok(body) } else { Err(body.to_string()) }
    })
    .await;

    let worker = &body["data"]["workers"][0];
    assert_eq!(worker["queues"], json!(["emails", "settlements"]), "{body}");
    assert!(worker["startedAt"].is_string() && worker["lastHeartbeatAt"].is_string());
    for name in ["emails", "settlements"] {
        assert!(
            queue(&body, name)["depth"].is_i64(),
            "the embedded queue answers: {body}"
        );
    }
}
on_both_backends!(an_embedded_worker_heartbeats_and_its_queues_have_depths);
