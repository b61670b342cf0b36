//! `worker_heartbeats`: one row per running job-runner process, refreshed by its
//! heartbeat, so the api can tell an operator which workers are alive
//! whatever the queue backend (Redis or SQLite) — both binaries always share
//! the database. (Not `workers`: apalis-sqlite has a `Workers` table in the
//! same SQLite file, and SQLite's names ignore case.)
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{integer, string_len, text, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WorkerHeartbeats::Table)
                    .col(string_len(WorkerHeartbeats::Id, 128).primary_key())
                    .col(text(WorkerHeartbeats::Queues))
                    .col(timestamp_with_time_zone(WorkerHeartbeats::StartedAt))
                    .col(timestamp_with_time_zone(WorkerHeartbeats::LastHeartbeatAt))
                    .col(
                        integer(WorkerHeartbeats::RunningJobs)
                            .check(Expr::col(WorkerHeartbeats::RunningJobs).gte(0)),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_worker_heartbeats_last_heartbeat_at")
                    .table(WorkerHeartbeats::Table)
                    .col(WorkerHeartbeats::LastHeartbeatAt)
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WorkerHeartbeats::Table).take())
            .await
    }
}

#[derive(DeriveIden)]
enum WorkerHeartbeats {
    Table,
    Id,
    Queues,
    StartedAt,
    LastHeartbeatAt,
    RunningJobs,
}
