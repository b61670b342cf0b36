//! The initial schema. Money is integer minor units (BIGINT) plus an ISO 4217
//! code; ids are UUID v7; timestamps are UTC. Enum columns are strings guarded
//! by CHECK constraints so both backends reject a value the code does not know.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, boolean, integer, json_binary, pk_uuid, string, string_len, string_null, text, text_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null, uuid, uuid_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    Name,
    PasswordHash,
    Role,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    UserId,
    TokenHash,
    ExpiresAt,
    UsedAt,
    RevokedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PasswordResets {
    Table,
    Id,
    UserId,
    TokenHash,
    ExpiresAt,
    UsedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Products {
    Table,
    Id,
    Sku,
    Slug,
    Name,
    Description,
    PriceMinor,
    Currency,
    Stock,
    Active,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum StockMovements {
    Table,
    Id,
    ProductId,
    OrderId,
    Delta,
    StockAfter,
    Reason,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
    UserId,
    Status,
    TotalMinor,
    Currency,
    IdempotencyKey,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OrderLines {
    Table,
    Id,
    OrderId,
    ProductId,
    ProductName,
    Quantity,
    UnitPriceMinor,
    Currency,
}

#[derive(DeriveIden)]
enum Payments {
    Table,
    Id,
    OrderId,
    Status,
    AmountMinor,
    Currency,
    Token,
    AuthorizationRef,
    Attempts,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum EmailDeliveries {
    Table,
    Id,
    DedupeKey,
    Recipient,
    Template,
    Status,
    Attempts,
    LastError,
    ClaimedUntil,
    SentAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    JobName,
    Payload,
    Attempt,
    AvailableAt,
    CreatedAt,
    DispatchedAt,
    CompletedAt,
    DispatchAttempts,
    LastError,
}

#[derive(DeriveIden)]
enum DeadJobs {
    Table,
    Id,
    JobName,
    Payload,
    Attempts,
    LastError,
    FailedAt,
}

/// `CHECK (column IN ('A', 'B', ...))` for a string enum column.
fn one_of(column: impl IntoIden, values: &[&str]) -> SimpleExpr {
    Expr::col(column.into_iden()).is_in(values.iter().copied())
}

fn fk(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(on_delete)
        .on_update(ForeignKeyAction::NoAction)
        .take()
}

/// A plain (or unique) index over the given columns.
fn index(name: &str, table: impl IntoIden, columns: &[&'static str], unique: bool) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table.into_iden());
    for column in columns {
        index.col(Alias::new(*column));
    }
    if unique {
        index.unique();
    }
    index.take()
}

const ROLES: &[&str] = &["CUSTOMER", "ADMIN"];
const ORDER_STATUSES: &[&str] = &[
    "PENDING_PAYMENT",
    "PAID",
    "FULFILLED",
    "PAYMENT_FAILED",
    "CANCELLED",
];
const PAYMENT_STATUSES: &[&str] = &["AUTHORIZED", "SETTLED", "FAILED", "VOIDED", "REFUNDED"];
const EMAIL_STATUSES: &[&str] = &["PENDING", "SENT", "FAILED"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(pk_uuid(Users::Id))
                    .col(string_len(Users::Email, 254))
                    .col(string_len(Users::Name, 200))
                    .col(string(Users::PasswordHash))
                    .col(string_len(Users::Role, 16).check(one_of(Users::Role, ROLES)))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .take(),
            )
            .await?;
        // Case-insensitive uniqueness: an expression index, same SQL on both backends.
        manager
            .get_connection()
            .execute_unprepared("CREATE UNIQUE INDEX ux_users_email_lower ON users (lower(email))")
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(pk_uuid(RefreshTokens::Id))
                    .col(uuid(RefreshTokens::UserId))
                    .col(string_len(RefreshTokens::TokenHash, 64).unique_key())
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::UsedAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::RevokedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_refresh_tokens_user",
                        (RefreshTokens::Table, RefreshTokens::UserId),
                        (Users::Table, Users::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_refresh_tokens_user_id",
                RefreshTokens::Table,
                &["user_id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PasswordResets::Table)
                    .col(pk_uuid(PasswordResets::Id))
                    .col(uuid(PasswordResets::UserId))
                    .col(string_len(PasswordResets::TokenHash, 64).unique_key())
                    .col(timestamp_with_time_zone(PasswordResets::ExpiresAt))
                    .col(timestamp_with_time_zone_null(PasswordResets::UsedAt))
                    .col(timestamp_with_time_zone(PasswordResets::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_password_resets_user",
                        (PasswordResets::Table, PasswordResets::UserId),
                        (Users::Table, Users::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_password_resets_user_id",
                PasswordResets::Table,
                &["user_id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Products::Table)
                    .col(pk_uuid(Products::Id))
                    .col(string_len(Products::Sku, 64).unique_key())
                    .col(string_len(Products::Slug, 128).unique_key())
                    .col(string_len(Products::Name, 200))
                    .col(text(Products::Description))
                    .col(big_integer(Products::PriceMinor).check(Expr::col(Products::PriceMinor).gte(0)))
                    .col(string_len(Products::Currency, 3))
                    .col(integer(Products::Stock).check(Expr::col(Products::Stock).gte(0)))
                    .col(boolean(Products::Active))
                    .col(timestamp_with_time_zone(Products::CreatedAt))
                    .col(timestamp_with_time_zone(Products::UpdatedAt))
                    .take(),
            )
            .await?;
        // Keyset pagination sorts by (column, id); customers filter on active.
        for (name, columns) in [
            ("ix_products_active_name", &["active", "name", "id"][..]),
            ("ix_products_active_price", &["active", "price_minor", "id"][..]),
            ("ix_products_name", &["name", "id"][..]),
            ("ix_products_price", &["price_minor", "id"][..]),
            ("ix_products_created_at", &["created_at", "id"][..]),
        ] {
            manager
                .create_index(index(name, Products::Table, columns, false))
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .col(pk_uuid(Orders::Id))
                    .col(uuid(Orders::UserId))
                    .col(string_len(Orders::Status, 32).check(one_of(Orders::Status, ORDER_STATUSES)))
                    .col(big_integer(Orders::TotalMinor).check(Expr::col(Orders::TotalMinor).gte(0)))
                    .col(string_len(Orders::Currency, 3))
                    .col(string_len(Orders::IdempotencyKey, 128))
                    .col(timestamp_with_time_zone(Orders::CreatedAt))
                    .col(timestamp_with_time_zone(Orders::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_orders_user",
                        (Orders::Table, Orders::UserId),
                        (Users::Table, Users::Id),
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "ux_orders_user_idempotency_key",
                Orders::Table,
                &["user_id", "idempotency_key"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_orders_user_id_id",
                Orders::Table,
                &["user_id", "id"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_orders_status_created_at",
                Orders::Table,
                &["status", "created_at"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(OrderLines::Table)
                    .col(pk_uuid(OrderLines::Id))
                    .col(uuid(OrderLines::OrderId))
                    .col(uuid(OrderLines::ProductId))
                    .col(string_len(OrderLines::ProductName, 200))
                    .col(integer(OrderLines::Quantity).check(Expr::col(OrderLines::Quantity).gt(0)))
                    .col(
                        big_integer(OrderLines::UnitPriceMinor)
                            .check(Expr::col(OrderLines::UnitPriceMinor).gte(0)),
                    )
                    .col(string_len(OrderLines::Currency, 3))
                    .foreign_key(&mut fk(
                        "fk_order_lines_order",
                        (OrderLines::Table, OrderLines::OrderId),
                        (Orders::Table, Orders::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_order_lines_product",
                        (OrderLines::Table, OrderLines::ProductId),
                        (Products::Table, Products::Id),
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_order_lines_order_id",
                OrderLines::Table,
                &["order_id"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_order_lines_product_id",
                OrderLines::Table,
                &["product_id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(StockMovements::Table)
                    .col(pk_uuid(StockMovements::Id))
                    .col(uuid(StockMovements::ProductId))
                    .col(uuid_null(StockMovements::OrderId))
                    .col(integer(StockMovements::Delta).check(Expr::col(StockMovements::Delta).ne(0)))
                    .col(
                        integer(StockMovements::StockAfter)
                            .check(Expr::col(StockMovements::StockAfter).gte(0)),
                    )
                    .col(string_len(StockMovements::Reason, 200))
                    .col(timestamp_with_time_zone(StockMovements::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_stock_movements_product",
                        (StockMovements::Table, StockMovements::ProductId),
                        (Products::Table, Products::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_stock_movements_order",
                        (StockMovements::Table, StockMovements::OrderId),
                        (Orders::Table, Orders::Id),
                        ForeignKeyAction::SetNull,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_stock_movements_product_id",
                StockMovements::Table,
                &["product_id", "created_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_stock_movements_order_id",
                StockMovements::Table,
                &["order_id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Payments::Table)
                    .col(pk_uuid(Payments::Id))
                    .col(uuid(Payments::OrderId).unique_key())
                    .col(string_len(Payments::Status, 16).check(one_of(Payments::Status, PAYMENT_STATUSES)))
                    .col(big_integer(Payments::AmountMinor).check(Expr::col(Payments::AmountMinor).gte(0)))
                    .col(string_len(Payments::Currency, 3))
                    .col(string_len(Payments::Token, 128))
                    .col(string_null(Payments::AuthorizationRef))
                    .col(
                        integer(Payments::Attempts)
                            .default(0)
                            .check(Expr::col(Payments::Attempts).gte(0)),
                    )
                    .col(text_null(Payments::LastError))
                    .col(timestamp_with_time_zone(Payments::CreatedAt))
                    .col(timestamp_with_time_zone(Payments::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_payments_order",
                        (Payments::Table, Payments::OrderId),
                        (Orders::Table, Orders::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("ix_payments_status", Payments::Table, &["status"], false))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EmailDeliveries::Table)
                    .col(pk_uuid(EmailDeliveries::Id))
                    .col(string_len(EmailDeliveries::DedupeKey, 200).unique_key())
                    .col(string_len(EmailDeliveries::Recipient, 254))
                    .col(string_len(EmailDeliveries::Template, 64))
                    .col(
                        string_len(EmailDeliveries::Status, 16)
                            .check(one_of(EmailDeliveries::Status, EMAIL_STATUSES)),
                    )
                    .col(
                        integer(EmailDeliveries::Attempts)
                            .default(0)
                            .check(Expr::col(EmailDeliveries::Attempts).gte(0)),
                    )
                    .col(text_null(EmailDeliveries::LastError))
                    .col(timestamp_with_time_zone_null(EmailDeliveries::ClaimedUntil))
                    .col(timestamp_with_time_zone_null(EmailDeliveries::SentAt))
                    .col(timestamp_with_time_zone(EmailDeliveries::CreatedAt))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_email_deliveries_status",
                EmailDeliveries::Table,
                &["status"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(pk_uuid(Outbox::Id))
                    .col(string_len(Outbox::JobName, 64))
                    .col(json_binary(Outbox::Payload))
                    .col(
                        integer(Outbox::Attempt)
                            .default(1)
                            .check(Expr::col(Outbox::Attempt).gte(1)),
                    )
                    .col(timestamp_with_time_zone(Outbox::AvailableAt))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone_null(Outbox::DispatchedAt))
                    .col(timestamp_with_time_zone_null(Outbox::CompletedAt))
                    .col(
                        integer(Outbox::DispatchAttempts)
                            .default(0)
                            .check(Expr::col(Outbox::DispatchAttempts).gte(0)),
                    )
                    .col(text_null(Outbox::LastError))
                    .take(),
            )
            .await?;
        // The sweeper looks for undispatched rows that are due, oldest first.
        manager
            .create_index(index(
                "ix_outbox_dispatched_at_available_at",
                Outbox::Table,
                &["dispatched_at", "available_at"],
                false,
            ))
            .await?;

        // The reaper looks for dispatched rows whose attempt never finished.
        manager
            .create_index(index(
                "ix_outbox_completed_at_dispatched_at",
                Outbox::Table,
                &["completed_at", "dispatched_at"],
                false,
            ))
            .await?;

        // Jobs that failed for good or ran out of retries, for an admin to retry.
        manager
            .create_table(
                Table::create()
                    .table(DeadJobs::Table)
                    .col(pk_uuid(DeadJobs::Id))
                    .col(string_len(DeadJobs::JobName, 64))
                    .col(json_binary(DeadJobs::Payload))
                    .col(integer(DeadJobs::Attempts).check(Expr::col(DeadJobs::Attempts).gte(1)))
                    .col(text(DeadJobs::LastError))
                    .col(timestamp_with_time_zone(DeadJobs::FailedAt))
                    .take(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents, so foreign keys never block a drop.
        for table in [
            DeadJobs::Table.into_iden(),
            Outbox::Table.into_iden(),
            EmailDeliveries::Table.into_iden(),
            Payments::Table.into_iden(),
            StockMovements::Table.into_iden(),
            OrderLines::Table.into_iden(),
            Orders::Table.into_iden(),
            Products::Table.into_iden(),
            PasswordResets::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).take()).await?;
        }
        Ok(())
    }
}
