//! The outbox's indexes, fitted to the queries that run against it
//! (`docs/outbox-indexes.md` has the plans on both databases):
//!
//! - `ix_outbox_unfinished_available_at`: `available_at` of the rows whose
//!   attempt has not finished (`WHERE completed_at IS NULL`). Every hot query
//!   reads only those rows: the dispatcher/sweeper (`due`, oldest first, so
//!   the index order is the `ORDER BY` and the scan stops at the batch size),
//!   the reaper (rows dispatched long ago, in the same query, and
//!   `redispatch_unfinished`), and the backlog figures (`due_on`, `backlog`).
//!   Partial, so it holds the backlog (hundreds of rows), not the history.
//! - `ix_outbox_completed_at`: `completed_at` of finished rows, for the
//!   pruner's range `completed_at < now - OUTBOX_RETENTION`.
//!
//! They replace the first schema's `(dispatched_at, available_at)` (used by
//! no plan on PostgreSQL) and `(completed_at, dispatched_at)` (whole-table
//! indexes that every dispatch and completion rewrote).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UNFINISHED: &str = "ix_outbox_unfinished_available_at";
const COMPLETED: &str = "ix_outbox_completed_at";
const OLD_DISPATCHED: &str = "ix_outbox_dispatched_at_available_at";
const OLD_COMPLETED: &str = "ix_outbox_completed_at_dispatched_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(UNFINISHED)
                    .table(Outbox::Table)
                    .col(Outbox::AvailableAt)
                    .and_where(Expr::col(Outbox::CompletedAt).is_null())
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(COMPLETED)
                    .table(Outbox::Table)
                    .col(Outbox::CompletedAt)
                    .and_where(Expr::col(Outbox::CompletedAt).is_not_null())
                    .take(),
            )
            .await?;
        for old in [OLD_DISPATCHED, OLD_COMPLETED] {
            manager
                .drop_index(Index::drop().name(old).table(Outbox::Table).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (old, columns) in [
            (OLD_DISPATCHED, [Outbox::DispatchedAt, Outbox::AvailableAt]),
            (OLD_COMPLETED, [Outbox::CompletedAt, Outbox::DispatchedAt]),
        ] {
            let mut index = Index::create();
            index.name(old).table(Outbox::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.take()).await?;
        }
        for new in [UNFINISHED, COMPLETED] {
            manager
                .drop_index(Index::drop().name(new).table(Outbox::Table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    AvailableAt,
    DispatchedAt,
    CompletedAt,
}
