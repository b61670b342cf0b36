//! `outbox.traceparent`: the W3C trace context of the span that wrote the
//! row (an HTTP request, or the job whose retry it is), so the job's span in
//! the worker continues the request's trace. Nullable: rows written before,
//! or with trace export off, carry none and run as before.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    // `00-<32 hex>-<16 hex>-<2 hex>` is 55 characters; room for later versions.
                    .add_column(ColumnDef::new(Outbox::Traceparent).string_len(128).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .drop_column(Outbox::Traceparent)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Traceparent,
}
