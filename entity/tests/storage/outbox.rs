use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::db::begin_write;
use entity::dead_jobs;
use entity::ids::OutboxId;
use entity::jobs::{Envelope, Job, SettlePayment};
use entity::outbox::{claim_due, enqueue, mark_completed, prune_completed};
use entity::tables::outbox;
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait};
use testkit::fixtures::{insert_finished_outbox_rows, outbox_ids};
use testkit::{Backend, TestDb};

use testkit::on_both_backends;

async fn outbox_rows_commit_and_roll_back_with_the_callers_transaction(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let job = SettlePayment {
        payment_id: entity::ids::PaymentId::new(),
        order_id: entity::ids::OrderId::new(),
        request_id: None,
    };

    let rolled_back = begin_write(&db.conn).await.expect("begin");
    enqueue(&rolled_back, &job).await.expect("enqueue");
    rolled_back.rollback().await.expect("rollback");
    assert_eq!(
        outbox::Entity::find().count(&db.conn).await.expect("count"),
        0,
        "no job without its data"
    );

    let committed = begin_write(&db.conn).await.expect("begin");
    let row = enqueue(&committed, &job).await.expect("enqueue");
    committed.commit().await.expect("commit");

    let stored = outbox::Entity::find_by_id(row.id)
        .one(&db.conn)
        .await
        .expect("query")
        .expect("row kept");
    assert_eq!(stored.job_name, SettlePayment::NAME);
    assert_eq!(stored.dispatched_at, None, "not yet pushed to a queue");
    let payload: SettlePayment = serde_json::from_value(stored.payload).expect("payload decodes");
    assert_eq!(payload, job);
}
on_both_backends!(
    transactional_outbox,
    outbox_rows_commit_and_roll_back_with_the_callers_transaction
);

// Pruning (`prune_completed`): the outbox keeps finished rows for
// `OUTBOX_RETENTION` only, and never a row whose job is not finished.

const RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

fn days_ago(days: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::days(days)
}

fn settle_job() -> SettlePayment {
    SettlePayment {
        payment_id: entity::ids::PaymentId::new(),
        order_id: entity::ids::OrderId::new(),
        request_id: None,
    }
}

async fn a_row_keeps_the_trace_of_the_span_that_wrote_it_and_its_retries_keep_it_too(backend: Backend) {
    use opentelemetry::trace::TracerProvider as _;
    use tracing::Instrument as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    // Arrange: trace export on for this thread, and a request's span
    let db = TestDb::migrated(backend).await;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _installed = tracing::subscriber::set_default(subscriber);
    let request = tracing::info_span!("request");
    let traceparent = entity::trace::of(&request).expect("the span is in a trace");
    let job = settle_job();

    // Act: a row written inside the span, its retry, and a row written outside any span
    let txn = begin_write(&db.conn).await.expect("begin");
    let row = enqueue(&txn, &job).instrument(request).await.expect("enqueue");
    txn.commit().await.expect("commit");
    let stored = outbox::Entity::find_by_id(row.id)
        .one(&db.conn)
        .await
        .expect("select")
        .expect("the row");
    let envelope = entity::outbox::envelope(&stored);
    let retry = entity::outbox::enqueue_retry(&db.conn, &envelope, Duration::ZERO)
        .await
        .expect("retry");
    let untraced = enqueue(&db.conn, &job).await.expect("enqueue");

    // Assert
    assert_eq!(stored.traceparent.as_deref(), Some(traceparent.as_str()));
    assert_eq!(envelope.traceparent.as_deref(), Some(traceparent.as_str()));
    assert_eq!(retry.traceparent.as_deref(), Some(traceparent.as_str()));
    assert_eq!(untraced.traceparent, None, "no span, no trace");
}

on_both_backends!(
    a_row_keeps_the_trace_of_the_span_that_wrote_it_and_its_retries_keep_it_too,
    a_row_keeps_the_trace_of_the_span_that_wrote_it_and_its_retries_keep_it_too
);

/// One row in the given state, created long before anything else happened to it.
async fn row_in_state(
    db: &TestDb,
    created_at: DateTime<Utc>,
    available_at: DateTime<Utc>,
    dispatched_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
) -> OutboxId {
    let id = OutboxId::new();
    outbox::ActiveModel {
        id: Set(id),
        job_name: Set(SettlePayment::NAME.to_owned()),
        payload: Set(serde_json::to_value(settle_job()).expect("payload")),
        attempt: Set(1),
        available_at: Set(available_at),
        created_at: Set(created_at),
        dispatched_at: Set(dispatched_at),
        completed_at: Set(completed_at),
        dispatch_attempts: Set(0),
        last_error: Set(None),
        traceparent: Set(None),
    }
    .insert(&db.conn)
    .await
    .expect("insert outbox row");
    id
}

/// Unfinished rows of every kind, all a year old: waiting and due, a retry
/// still backing off, dispatched long ago (lost by the queue) and
/// dispatched just now.
async fn unfinished_rows(db: &TestDb) -> Vec<OutboxId> {
    let year_ago = days_ago(365);
    vec![
        row_in_state(db, year_ago, year_ago, None, None).await,
        row_in_state(db, year_ago, Utc::now() + chrono::Duration::hours(1), None, None).await,
        row_in_state(db, year_ago, year_ago, Some(year_ago), None).await,
        row_in_state(db, year_ago, year_ago, Some(Utc::now()), None).await,
    ]
}

async fn pruning_deletes_only_rows_finished_past_the_retention(backend: Backend) {
    // Arrange
    let db = TestDb::migrated(backend).await;
    let old = insert_finished_outbox_rows(&db.conn, &settle_job(), 3, days_ago(8))
        .await
        .expect("old finished rows");
    let just_inside =
        Utc::now() - chrono::Duration::from_std(RETENTION).expect("retention") + chrono::Duration::minutes(5);
    let mut kept = insert_finished_outbox_rows(&db.conn, &settle_job(), 2, just_inside)
        .await
        .expect("finished rows inside the retention");
    kept.extend(unfinished_rows(&db).await);
    // A row through its real life: enqueued, dispatched, completed now.
    let fresh = enqueue(&db.conn, &settle_job()).await.expect("enqueue");
    // (The claim also takes the unfinished rows above that are due: they
    // stay unfinished, which is what they are there for.)
    let claimed = claim_due(&db.conn, Duration::ZERO, RETENTION, 10, None)
        .await
        .expect("dispatched");
    assert!(claimed.iter().any(|row| row.id == fresh.id));
    mark_completed(&db.conn, fresh.id).await.expect("completed");
    kept.push(fresh.id);
    // A job that died: its last attempt's row finished long ago; the dead
    // job keeps its own payload for an admin's retry.
    let died = settle_job();
    let last_attempt = insert_finished_outbox_rows(&db.conn, &died, 1, days_ago(30))
        .await
        .expect("the dead job's last attempt");
    let envelope = Envelope {
        outbox_id: last_attempt[0],
        job_name: SettlePayment::NAME.to_owned(),
        attempt: 6,
        payload: serde_json::to_value(&died).expect("payload"),
        traceparent: None,
    };
    let dead = dead_jobs::bury(&db.conn, &envelope, "gateway said no")
        .await
        .expect("bury");

    // Act
    let deleted = prune_completed(&db.conn, RETENTION, 500).await.expect("prune");

    // Assert
    assert_eq!(deleted, 4, "the three old rows and the dead job's old attempt");
    assert_eq!(
        outbox_ids(&db.conn).await,
        kept.iter().copied().collect::<HashSet<_>>()
    );
    assert!(old.iter().all(|id| !kept.contains(id)));
    assert_eq!(
        dead_jobs::count(&db.conn).await.expect("count"),
        1,
        "dead jobs are kept until an admin acts"
    );
    let txn = begin_write(&db.conn).await.expect("begin");
    let retried = dead_jobs::retry(&txn, dead.id)
        .await
        .expect("retryDeadJob still works");
    txn.commit().await.expect("commit");
    let payload: SettlePayment = serde_json::from_value(retried.payload).expect("payload decodes");
    assert_eq!(payload, died, "the retry runs the job that died");
    assert_eq!(
        prune_completed(&db.conn, RETENTION, 500)
            .await
            .expect("prune again"),
        0,
        "nothing left to prune"
    );
}
on_both_backends!(
    prune_by_retention,
    pruning_deletes_only_rows_finished_past_the_retention
);

async fn pruning_never_deletes_a_row_whose_job_is_not_finished(backend: Backend) {
    // Arrange: unfinished rows a year old, finished rows a second old
    let db = TestDb::migrated(backend).await;
    let unfinished = unfinished_rows(&db).await;
    insert_finished_outbox_rows(
        &db.conn,
        &settle_job(),
        50,
        Utc::now() - chrono::Duration::seconds(1),
    )
    .await
    .expect("finished rows");

    // Act: the most eager prune there is, a retention of zero
    let deleted = prune_completed(&db.conn, Duration::ZERO, 500)
        .await
        .expect("prune");

    // Assert: every finished row went, every unfinished one stayed
    assert_eq!(deleted, 50);
    assert_eq!(
        outbox_ids(&db.conn).await,
        unfinished.into_iter().collect::<HashSet<_>>()
    );
}
on_both_backends!(
    prune_keeps_unfinished,
    pruning_never_deletes_a_row_whose_job_is_not_finished
);

async fn a_large_outbox_is_pruned_in_batches(backend: Backend) {
    // Arrange
    let db = TestDb::migrated(backend).await;
    insert_finished_outbox_rows(&db.conn, &settle_job(), 1_234, days_ago(10))
        .await
        .expect("old finished rows");

    // Act: one statement per call, as the worker's prune round calls it
    let mut batches = Vec::new();
    loop {
        let deleted = prune_completed(&db.conn, RETENTION, 500).await.expect("prune");
        batches.push(deleted);
        if deleted < 500 {
            break;
        }
    }

    // Assert: no statement deletes more than a batch
    assert_eq!(batches, [500, 500, 234]);
    assert_eq!(outbox::Entity::find().count(&db.conn).await.expect("count"), 0);
}
on_both_backends!(prune_in_batches, a_large_outbox_is_pruned_in_batches);

async fn concurrent_prunes_delete_each_row_once_and_fail_nothing(backend: Backend) {
    // Arrange
    const ROWS: u64 = 3_000;
    const PRUNERS: usize = 6;
    let db = TestDb::migrated(backend).await;
    insert_finished_outbox_rows(&db.conn, &settle_job(), 3_000, days_ago(9))
        .await
        .expect("old finished rows");
    let unfinished = unfinished_rows(&db).await;

    // Act: six workers' prune rounds at once, small batches so they overlap
    let mut pruners = tokio::task::JoinSet::new();
    for _ in 0..PRUNERS {
        let conn = db.conn.clone();
        pruners.spawn(async move {
            let mut total = 0;
            loop {
                let deleted = prune_completed(&conn, RETENTION, 100).await?;
                total += deleted;
                if deleted == 0 {
                    return Ok::<u64, entity::error::DomainError>(total);
                }
            }
        });
    }
    let mut per_pruner = Vec::new();
    while let Some(joined) = pruners.join_next().await {
        per_pruner.push(joined.expect("pruner task").expect("no prune fails"));
    }

    // Assert: each row deleted once (the sum of what each deleted is the
    // total), nothing left but the unfinished rows
    assert_eq!(per_pruner.iter().sum::<u64>(), ROWS, "per pruner: {per_pruner:?}");
    assert_eq!(
        outbox_ids(&db.conn).await,
        unfinished.into_iter().collect::<HashSet<_>>()
    );
}
on_both_backends!(
    concurrent_prunes,
    concurrent_prunes_delete_each_row_once_and_fail_nothing
);
