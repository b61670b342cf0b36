//! Partial refunds: `refunds` (one per admin request: amount, reason,
//! whether stock went back, and its status while the gateway is asked by a
//! job) and `refund_lines` (which order lines, how many units). What is
//! left to refund is the payment's amount minus its refunds that did not
//! fail, counted under the payment's row lock (`entity::payments::refund`).
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, boolean, integer, pk_uuid, string_len, text_null, timestamp_with_time_zone,
    timestamp_with_time_zone_null, uuid,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

const STATUSES: &[&str] = &["PENDING", "SUCCEEDED", "FAILED"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Refunds::Table)
                    .col(pk_uuid(Refunds::Id))
                    .col(uuid(Refunds::OrderId))
                    .col(uuid(Refunds::PaymentId))
                    .col(big_integer(Refunds::AmountMinor).check(Expr::col(Refunds::AmountMinor).gt(0)))
                    .col(string_len(Refunds::Currency, 3))
                    .col(string_len(Refunds::Reason, 500))
                    .col(boolean(Refunds::Restock))
                    .col(
                        string_len(Refunds::Status, 16)
                            .check(Expr::col(Refunds::Status).is_in(STATUSES.iter().copied())),
                    )
                    .col(text_null(Refunds::LastError))
                    .col(timestamp_with_time_zone(Refunds::CreatedAt))
                    .col(timestamp_with_time_zone_null(Refunds::CompletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refunds_order")
                            .from(Refunds::Table, Refunds::OrderId)
                            .to(Orders::Table, Orders::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refunds_payment")
                            .from(Refunds::Table, Refunds::PaymentId)
                            .to(Payments::Table, Payments::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefundLines::Table)
                    .col(uuid(RefundLines::RefundId))
                    .col(uuid(RefundLines::OrderLineId))
                    .col(integer(RefundLines::Quantity).check(Expr::col(RefundLines::Quantity).gt(0)))
                    .primary_key(
                        Index::create()
                            .col(RefundLines::RefundId)
                            .col(RefundLines::OrderLineId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refund_lines_refund")
                            .from(RefundLines::Table, RefundLines::RefundId)
                            .to(Refunds::Table, Refunds::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refund_lines_order_line")
                            .from(RefundLines::Table, RefundLines::OrderLineId)
                            .to(OrderLines::Table, OrderLines::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .take(),
            )
            .await?;
        for index in [
            Index::create()
                .name("ix_refunds_payment_id")
                .table(Refunds::Table)
                .col(Refunds::PaymentId)
                .take(),
            Index::create()
                .name("ix_refunds_order_id")
                .table(Refunds::Table)
                .col(Refunds::OrderId)
                .take(),
            Index::create()
                .name("ix_refund_lines_order_line_id")
                .table(RefundLines::Table)
                .col(RefundLines::OrderLineId)
                .take(),
        ] {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [RefundLines::Table.into_iden(), Refunds::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).take()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Refunds {
    Table,
    Id,
    OrderId,
    PaymentId,
    AmountMinor,
    Currency,
    Reason,
    Restock,
    Status,
    LastError,
    CreatedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum RefundLines {
    Table,
    RefundId,
    OrderLineId,
    Quantity,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Payments {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum OrderLines {
    Table,
    Id,
}
