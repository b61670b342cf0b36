use entity::db::begin_write;
use entity::jobs::{Job, SettlePayment};
use entity::outbox::enqueue;
use entity::tables::outbox;
use sea_orm::{EntityTrait, PaginatorTrait};
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
