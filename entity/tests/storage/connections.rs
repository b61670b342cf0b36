//! Dead pooled connections: after PostgreSQL restarts, the pool's old
//! connections are dead; reads and write transactions through the retry
//! policy (`entity::db::retry`) still succeed, a COMMIT cut off by a dying
//! session is resolved by asking the server, and ordinary errors are not
//! retried. The restarts happen on a private server (`PrivatePostgres`),
//! never the shared one.
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use entity::db::lost::ConnectionLost;
use entity::db::retry::{self, TxStatus};
use entity::tables::products;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, PaginatorTrait, Statement,
};
use testkit::{Backend, PrivatePostgres, TestDb};

use crate::helpers::insert_product;

/// A migrated private server and a pool of `size` on it whose connections
/// are all open (so a restart leaves `size` dead connections in it).
async fn warm_pool(pg: &PrivatePostgres, size: u32) -> DatabaseConnection {
    let db = entity::db::connect(&pg.url(), size).await.expect("connect");
    Migrator::up(&db, None).await.expect("migrate");
    let busy = (0..size).map(|_| db.execute_unprepared("SELECT pg_sleep(0.05)"));
    for result in futures::future::join_all(busy).await {
        result.expect("warm the pool");
    }
    db
}

async fn scalar_i64(db: &impl ConnectionTrait, sql: &str) -> Result<i64, DbErr> {
    db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?
        .ok_or_else(|| DbErr::Custom("no row".into()))?
        .try_get_by_index(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_writes_on_the_old_pool_succeed_after_a_restart() {
    // Arrange: two warm pools on a private server, then a fast restart
    let mut pg = PrivatePostgres::start().await;
    let db = warm_pool(&pg, 5).await;
    let unguarded = warm_pool(&pg, 2).await;
    let down_for = pg.restart();
    println!("private PostgreSQL restarted in {down_for:?}");

    // Act + Assert: without the policy, a pooled connection is dead
    let plain = products::Entity::find().count(&unguarded).await;
    let err = plain.expect_err("a connection opened before the restart is dead");
    assert!(err.connection_lost(), "classified as a lost connection: {err}");

    // A burst of reads and a write transaction through the policy all succeed.
    let reads = (0..10).map(|_| retry::retrying("count", || products::Entity::find().count(&db)));
    for read in futures::future::join_all(reads).await {
        assert_eq!(read.expect("a read after the restart"), 0);
    }
    let written = retry::write(&db, "insert", |txn| {
        Box::pin(async move { Ok::<_, DbErr>(insert_product(txn, 3, true).await.id) })
    })
    .await
    .expect("a write transaction after the restart");
    let found = retry::retrying("find", || products::Entity::find_by_id(written).one(&db)).await;
    assert!(found.expect("read back").is_some(), "the write committed");
}

/// Creates `probe` whose rows take `sleep` seconds to COMMIT (a deferred
/// constraint trigger), so a test can end the session during COMMIT.
async fn slow_commit_table(db: &DatabaseConnection, sleep: f64) {
    db.execute_unprepared(&format!(
        "CREATE TABLE probe (id int PRIMARY KEY);
         CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN PERFORM pg_sleep({sleep}); RETURN NULL; END $$;
         CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON probe
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();"
    ))
    .await
    .expect("create the probe table");
}

/// Terminates the first session seen running COMMIT; returns its pid.
async fn kill_the_next_commit(admin: &DatabaseConnection) -> i64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found = admin
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT pid::bigint, pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE query = 'COMMIT' AND state = 'active' AND pid <> pg_backend_pid() LIMIT 1",
            ))
            .await
            .expect("look for a COMMIT");
        if let Some(row) = found {
            return row.try_get_by_index(0).expect("pid");
        }
        assert!(tokio::time::Instant::now() < deadline, "no COMMIT seen");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_cut_off_by_a_dying_session_is_resolved_and_retried_once() {
    // Arrange: a table whose COMMIT takes a second, and a killer waiting for it
    let pg = PrivatePostgres::start().await;
    let db = warm_pool(&pg, 3).await;
    let admin = entity::db::connect(&pg.url(), 1).await.expect("admin pool");
    slow_commit_table(&db, 1.0).await;
    let killer = tokio::spawn(async move { kill_the_next_commit(&admin).await });

    // Act: the first attempt's session is terminated during its COMMIT
    let attempts = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&attempts);
    retry::write(&db, "probe", move |txn| {
        let counted = Arc::clone(&counted);
        Box::pin(async move {
            counted.fetch_add(1, Ordering::SeqCst);
            txn.execute_unprepared("INSERT INTO probe VALUES (1)").await?;
            Ok::<_, DbErr>(())
        })
    })
    .await
    .expect("the retried transaction commits");

    // Assert: the cut-off COMMIT was found aborted, so it ran again, once
    killer.await.expect("the killer found the COMMIT");
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        2,
        "one attempt cut off, one retry"
    );
    assert_eq!(
        scalar_i64(&db, "SELECT count(*) FROM probe")
            .await
            .expect("count"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txid_status_tells_committed_aborted_and_waits_out_in_progress() {
    let pg = PrivatePostgres::start().await;
    let db = warm_pool(&pg, 4).await;
    let txid = "SELECT txid_current()";

    // Committed.
    let txn = entity::db::begin_write(&db).await.expect("begin");
    let committed = scalar_i64(&txn, txid).await.expect("txid");
    txn.commit().await.expect("commit");
    assert_eq!(
        retry::commit_status(&db, committed).await,
        Ok(TxStatus::Committed)
    );

    // Aborted: its session is terminated from another one.
    let txn = entity::db::begin_write(&db).await.expect("begin");
    let aborted = scalar_i64(&txn, txid).await.expect("txid");
    let pid = scalar_i64(&txn, "SELECT pg_backend_pid()::bigint")
        .await
        .expect("pid");
    db.execute_unprepared(&format!("SELECT pg_terminate_backend({pid})"))
        .await
        .expect("terminate");
    assert_eq!(retry::commit_status(&db, aborted).await, Ok(TxStatus::Aborted));
    let lost = retry::commit(&db, txn).await.expect_err("its COMMIT fails");
    assert!(lost.connection_lost(), "and is retryable: {lost}");

    // In progress, then committed: the resolver waits for the end.
    let txn = entity::db::begin_write(&db).await.expect("begin");
    let open = scalar_i64(&txn, txid).await.expect("txid");
    let asking = tokio::spawn({
        let db = db.clone();
        async move { retry::commit_status(&db, open).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!asking.is_finished(), "an open transaction is not reported yet");
    txn.commit().await.expect("commit");
    assert_eq!(asking.await.expect("join"), Ok(TxStatus::Committed));
}

async fn ordinary_errors_are_not_retried(backend: Backend) {
    let test = TestDb::migrated(backend).await;
    let product = insert_product(&test.conn, 1, true).await;
    let attempts = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&attempts);
    let duplicate = retry::write(&test.conn, "duplicate sku", move |txn| {
        let counted = Arc::clone(&counted);
        // The same sku and slug under a new id.
        let mut copy: products::ActiveModel = product.clone().into();
        copy.id = sea_orm::ActiveValue::Set(entity::ids::ProductId::new());
        Box::pin(async move {
            counted.fetch_add(1, Ordering::SeqCst);
            products::Entity::insert(copy).exec(txn).await.map(|_| ())
        })
    })
    .await;
    let err = duplicate.expect_err("a duplicate sku fails");
    assert!(
        entity::error::is_unique_violation(&err),
        "a unique violation: {err}"
    );
    assert!(!err.connection_lost(), "not a lost connection: {err}");
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "tried once");

    // And the policy is transparent when nothing fails.
    let count = retry::retrying("count", || products::Entity::find().count(&test.conn)).await;
    assert_eq!(count.expect("count"), 1);
}
testkit::on_both_backends!(ordinary_errors_are_not_retried);
