//! No raw secret at rest: a password reset token exists only in the email
//! it was sent with (and as a hash in `password_resets`), never in a table,
//! the queue or a dead job; `deadJobs.payload` shows secrets redacted. The
//! real api with its worker, a real SMTP server, and scans of every column
//! of every table and every key of the queue's Redis namespace.
use std::time::Duration;

use entity::jobs::{Envelope, Job, SendEmail};
use entity::tables::{email_deliveries, outbox, password_resets};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use testkit::scan::{database_cells_holding, redis_keys_holding};
use testkit::{Backend, Behaviour, TestSmtp, eventually};

use crate::helpers::{TestApp, error_code, on_both_backends};

const REQUEST: &str = "mutation($e: String!) { requestPasswordReset(email: $e) }";
const RESET: &str = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";
const DEAD: &str = "{ deadJobs(first: 10) { edges { node { name payload lastError } } } }";
const SUBJECT: &str = "Reset your";

async fn request_reset(app: &TestApp, email: &str) {
    let body = app.graphql(REQUEST, json!({ "e": email })).await;
    assert_eq!(body["data"]["requestPasswordReset"], true, "{body}");
}

async fn reset(app: &TestApp, token: &str) -> Value {
    app.graphql(RESET, json!({ "t": token, "p": "a brand new password" }))
        .await
}

/// Waits until every outbox row's attempt has finished (its queue entry acked).
async fn jobs_finish(app: &TestApp) {
    eventually(Duration::from_secs(20), "every job finished", || async {
        let open = outbox::Entity::find()
            .filter(outbox::Column::CompletedAt.is_null())
            .count(&app.state.db)
            .await
            .map_err(|e| e.to_string())?;
        if open == 0 {
            Ok(())
        } else {
            Err(format!("{open} open"))
        }
    })
    .await;
}

/// Pushes `payload` as a new `send_email.v1` job, as a redelivery (or an
/// older build) would.
async fn queue_email(app: &TestApp, payload: Value) {
    let txn = entity::db::begin_write(&app.state.db).await.expect("begin");
    entity::outbox::enqueue_raw(&txn, SendEmail::NAME, payload)
        .await
        .expect("queued");
    txn.commit().await.expect("commit");
    app.state.kicker.kick();
}

/// The outbox payload of the password reset email.
async fn reset_email_payload(app: &TestApp) -> Value {
    let rows = outbox::Entity::find()
        .filter(outbox::Column::JobName.eq(SendEmail::NAME))
        .all(&app.state.db)
        .await
        .expect("outbox");
    rows.into_iter()
        .map(|row| row.payload)
        .find(|payload| {
            payload["dedupe_key"]
                .as_str()
                .is_some_and(|k| k.starts_with("password-reset:"))
        })
        .expect("a password reset email job")
}

async fn dead_jobs(app: &TestApp) -> Vec<Value> {
    let admin = app.admin().await;
    let body = app.graphql_as(&admin, DEAD, json!({})).await;
    body["data"]["deadJobs"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|edge| edge["node"].clone())
        .collect()
}

async fn a_reset_token_is_found_only_in_the_email_it_was_sent_with(backend: Backend) {
    let smtp = TestSmtp::start(Behaviour::Accept);
    let app = TestApp::spawn_with_worker(backend, &smtp).await;
    app.register("secret@example.com").await;

    request_reset(&app, "secret@example.com").await;
    let token = smtp.wait_for(SUBJECT, 1).await[0].reset_token();
    jobs_finish(&app).await;

    // The scan reads what is stored: the address in `users`, the reset's id
    // in the job's payload (testkit's own tests show that it reads every
    // Redis type, and a table added later).
    let reset_id = password_resets::Entity::find()
        .one(&app.state.db)
        .await
        .expect("query")
        .expect("a reset")
        .id
        .to_string();
    let db = &app.state.db;
    assert!(
        database_cells_holding(db, "secret@example.com")
            .await
            .contains(&"users.email".to_owned())
    );
    assert!(
        database_cells_holding(db, &reset_id)
            .await
            .contains(&"outbox.payload".to_owned())
    );
    assert_eq!(token.len(), 43, "{token}");
    assert_eq!(
        database_cells_holding(db, &token).await,
        Vec::<String>::new(),
        "no table holds the raw token"
    );
    if let Some(redis) = &app.redis {
        let scan = redis_keys_holding(&redis.url, &redis.name, &token).await;
        assert!(scan.keys > 0, "the queue's keys were read: {scan:?}");
        assert_eq!(
            scan.holding,
            Vec::<String>::new(),
            "no Redis key holds the raw token"
        );
    }

    let done = reset(&app, &token).await;
    assert_eq!(
        done["data"]["resetPassword"], true,
        "the emailed token works: {done}"
    );
    let again = reset(&app, &token).await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT", "once: {again}");
}
on_both_backends!(
    token_only_in_the_email,
    a_reset_token_is_found_only_in_the_email_it_was_sent_with
);

async fn an_email_job_run_twice_leaves_only_the_newest_token_working(backend: Backend) {
    let smtp = TestSmtp::start(Behaviour::Accept);
    let app = TestApp::spawn_with_worker(backend, &smtp).await;
    app.register("twice@example.com").await;
    request_reset(&app, "twice@example.com").await;
    let first = smtp.wait_for(SUBJECT, 1).await[0].reset_token();
    jobs_finish(&app).await;
    let payload = reset_email_payload(&app).await;

    // Delivered again after it was sent: nothing is sent, nothing minted.
    queue_email(&app, payload.clone()).await;
    jobs_finish(&app).await;
    assert_eq!(smtp.about(SUBJECT).len(), 1, "a sent email is not sent again");

    // A worker died after SMTP took the email, before marking it sent: its
    // lease ran out and the job runs again (the one duplicate at-least-once
    // delivery allows). The second email's token replaces the first's.
    email_deliveries::Entity::update_many()
        .col_expr(email_deliveries::Column::Status, Expr::value("PENDING"))
        .filter(email_deliveries::Column::DedupeKey.eq(payload["dedupe_key"].as_str().expect("key")))
        .exec(&app.state.db)
        .await
        .expect("as a crashed worker leaves it");
    queue_email(&app, payload).await;
    let second = smtp.wait_for(SUBJECT, 2).await[1].reset_token();
    assert_ne!(first, second);

    let stale = reset(&app, &first).await;
    assert_eq!(
        error_code(&stale),
        "BAD_USER_INPUT",
        "the first email's token died when the second was minted: {stale}"
    );
    let done = reset(&app, &second).await;
    assert_eq!(done["data"]["resetPassword"], true, "{done}");
}
on_both_backends!(
    email_run_twice,
    an_email_job_run_twice_leaves_only_the_newest_token_working
);

/// A `send_email.v1` payload as builds before `password_reset_v2` wrote
/// it, with the raw token.
fn legacy_payload(dedupe_key: &str, to: &str, token: &str) -> Value {
    json!({
        "dedupe_key": dedupe_key,
        "to": to,
        "message": { "template": "password_reset", "name": "Ada", "token": token },
        "request_id": null,
    })
}

async fn a_dead_job_s_payload_is_shown_with_its_secrets_redacted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let envelope = Envelope {
        outbox_id: entity::ids::OutboxId::new(),
        job_name: SendEmail::NAME.to_owned(),
        attempt: 3,
        payload: legacy_payload("password-reset:old", "ada@example.com", "legacy-raw-token-value"),
        traceparent: None,
    };
    entity::dead_jobs::bury(&app.state.db, &envelope, "smtp: 451 try again later")
        .await
        .expect("a dead job from an older build");

    let dead = dead_jobs(&app).await;
    let payload: Value =
        serde_json::from_str(dead[0]["payload"].as_str().expect("payload text")).expect("JSON");
    assert_eq!(
        payload,
        json!({
            "dedupe_key": "password-reset:old",
            "to": "ada@example.com",
            "message": { "template": "password_reset", "name": "Ada", "token": "[redacted]" },
            "request_id": null,
        }),
        "everything but the secret is shown"
    );
}
on_both_backends!(
    dead_job_payload_redacted,
    a_dead_job_s_payload_is_shown_with_its_secrets_redacted
);

async fn a_job_an_older_build_queued_with_the_raw_token_is_sent_with_a_new_one(backend: Backend) {
    let smtp = TestSmtp::start(Behaviour::Accept);
    let app = TestApp::spawn_with_worker(backend, &smtp).await;
    app.register("legacy@example.com").await;
    request_reset(&app, "legacy@example.com").await;
    let old = smtp.wait_for(SUBJECT, 1).await[0].reset_token();
    jobs_finish(&app).await;

    // The old shape, holding a token that works.
    queue_email(
        &app,
        legacy_payload("password-reset:legacy-1", "legacy@example.com", &old),
    )
    .await;
    let new = smtp.wait_for(SUBJECT, 2).await[1].reset_token();
    jobs_finish(&app).await;
    assert_ne!(new, old, "the raw token of the payload is never sent");
    let outbox_payload = "outbox.payload".to_owned();
    assert!(
        !database_cells_holding(&app.state.db, &old)
            .await
            .contains(&outbox_payload),
        "the outbox row was rewritten without the token"
    );
    let stale = reset(&app, &old).await;
    assert_eq!(error_code(&stale), "BAD_USER_INPUT", "{stale}");
    let done = reset(&app, &new).await;
    assert_eq!(done["data"]["resetPassword"], true, "{done}");

    // The old shape for a reset that was used since: dead, and its payload
    // stored without the token.
    queue_email(
        &app,
        legacy_payload("password-reset:legacy-2", "legacy@example.com", &new),
    )
    .await;
    jobs_finish(&app).await;
    let holding = database_cells_holding(&app.state.db, &new).await;
    assert!(
        !holding.contains(&outbox_payload) && !holding.contains(&"dead_jobs.payload".to_owned()),
        "{holding:?}"
    );
    let dead = dead_jobs(&app).await;
    assert_eq!(
        dead[0]["lastError"], "the password reset was used or expired before its email was sent",
        "{dead:?}"
    );
    assert_eq!(smtp.about(SUBJECT).len(), 2, "no email for a used reset");
}
on_both_backends!(
    legacy_job_drains,
    a_job_an_older_build_queued_with_the_raw_token_is_sent_with_a_new_one
);
