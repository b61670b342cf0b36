//! The completer (`worker::complete`): finished jobs' `completed_at`
//! written in batches, within the flush interval, at once for a full
//! batch, and on close. One statement writes one timestamp, so a batch
//! shows as rows sharing their `completed_at`.
use std::collections::HashSet;
use std::time::Duration;

use entity::ids::OutboxId;
use entity::tables::outbox;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use testkit::fixtures::{insert_outbox_rows, settled_payment};
use testkit::{Backend, TestDb, eventually, on_both_backends};
use tokio::sync::watch;
use worker::complete::{Completer, CompletionSettings};
use worker::dispatch::Kicker;

const ROWS: usize = 50;
const HOUR: Duration = Duration::from_secs(3600);

async fn outbox_with_rows(backend: Backend) -> (TestDb, Vec<OutboxId>) {
    let db = TestDb::migrated(backend).await;
    let job = settled_payment(&db.conn).await.expect("a settled payment");
    insert_outbox_rows(&db.conn, &job, ROWS)
        .await
        .expect("outbox rows");
    let ids = outbox::Entity::find()
        .all(&db.conn)
        .await
        .expect("read the outbox")
        .into_iter()
        .map(|row| row.id)
        .collect();
    (db, ids)
}

/// A completer over `db`, running; close it with the sender.
fn start(
    db: &TestDb,
    settings: CompletionSettings,
) -> (Completer, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (completer, pending) = Completer::new(settings);
    let (close, closed) = watch::channel(false);
    let running = tokio::spawn(pending.run(db.conn.clone(), Kicker::default(), closed));
    (completer, close, running)
}

/// The distinct `completed_at`s of the completed rows, and how many rows
/// are not completed.
async fn completions(db: &DatabaseConnection) -> (usize, usize) {
    let rows = outbox::Entity::find().all(db).await.expect("read the outbox");
    let stamps: HashSet<_> = rows.iter().filter_map(|row| row.completed_at).collect();
    let open = rows.iter().filter(|row| row.completed_at.is_none()).count();
    (stamps.len(), open)
}

async fn finished_jobs_are_written_in_one_batch_within_the_flush_interval(backend: Backend) {
    // Arrange
    let (db, ids) = outbox_with_rows(backend).await;
    let settings = CompletionSettings {
        batch: 500,
        flush_every: Duration::from_millis(200),
    };
    let (completer, _close, running) = start(&db, settings);

    // Act: all of them well inside one flush interval
    for id in &ids {
        completer.complete(*id).await;
    }

    // Assert
    eventually(Duration::from_secs(10), "every row completed", || async {
        match completions(&db.conn).await {
            (_, 0) => Ok(()),
            (_, open) => Err(format!("{open} not completed")),
        }
    })
    .await;
    assert_eq!(
        completions(&db.conn).await,
        (1, 0),
        "one statement for all {ROWS}"
    );
    running.abort();
}
on_both_backends!(
    one_batch_per_flush,
    finished_jobs_are_written_in_one_batch_within_the_flush_interval
);

async fn a_full_batch_is_written_at_once_and_the_rest_on_close(backend: Backend) {
    // Arrange: a flush interval longer than the test
    let (db, ids) = outbox_with_rows(backend).await;
    let settings = CompletionSettings {
        batch: 20,
        flush_every: HOUR,
    };
    let (completer, close, running) = start(&db, settings);

    // Act 1: two full batches and a half
    for id in &ids {
        completer.complete(*id).await;
    }

    // Assert 1: the full batches are written without waiting, the rest waits
    eventually(Duration::from_secs(10), "two batches written", || async {
        match completions(&db.conn).await {
            (2, 10) => Ok(()),
            other => Err(format!("(batches, open) = {other:?}")),
        }
    })
    .await;

    // Act 2: close
    close.send(true).expect("the completer listens");
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the completer returns once closed")
        .expect("the completer does not panic");

    // Assert 2: the last ten were written on close
    assert_eq!(completions(&db.conn).await, (3, 0));
    let completed = outbox::Entity::find()
        .filter(outbox::Column::CompletedAt.is_not_null())
        .all(&db.conn)
        .await
        .expect("read the outbox");
    assert_eq!(completed.len(), ROWS);
}
on_both_backends!(
    full_batches_and_close,
    a_full_batch_is_written_at_once_and_the_rest_on_close
);
