//! Discount codes: `discount_codes` (the code, its value, window and usage
//! limits, and how many times it has been used), `discount_customer_uses`
//! (uses per customer, for per-customer limits) and `discount_redemptions`
//! (which order used which code for how much; a cancelled order's use is
//! given back by setting `released_at`).
//!
//! The counters carry the limits as CHECK constraints too, so a bug in the
//! conditional updates that enforce them would fail loudly, not oversell.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, boolean, integer, integer_null, pk_uuid, string_len, timestamp_with_time_zone,
    timestamp_with_time_zone_null, uuid,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

const KINDS: &[&str] = &["PERCENTAGE", "FIXED_AMOUNT"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DiscountCodes::Table)
                    .col(pk_uuid(DiscountCodes::Id))
                    .col(string_len(DiscountCodes::Code, 32).unique_key())
                    .col(
                        string_len(DiscountCodes::Kind, 16)
                            .check(Expr::col(DiscountCodes::Kind).is_in(KINDS.iter().copied())),
                    )
                    .col(big_integer(DiscountCodes::Value).check(Expr::col(DiscountCodes::Value).gt(0)))
                    .col(string_len(DiscountCodes::Currency, 3))
                    .col(
                        big_integer(DiscountCodes::MinimumSubtotalMinor)
                            .check(Expr::col(DiscountCodes::MinimumSubtotalMinor).gte(0)),
                    )
                    .col(timestamp_with_time_zone(DiscountCodes::StartsAt))
                    .col(timestamp_with_time_zone_null(DiscountCodes::EndsAt))
                    .col(integer_null(DiscountCodes::UsageLimit).check(Expr::col(DiscountCodes::UsageLimit).gt(0)))
                    .col(
                        integer_null(DiscountCodes::PerCustomerLimit)
                            .check(Expr::col(DiscountCodes::PerCustomerLimit).gt(0)),
                    )
                    .col(integer(DiscountCodes::TimesUsed).check(Expr::col(DiscountCodes::TimesUsed).gte(0)))
                    .col(boolean(DiscountCodes::Active))
                    .col(timestamp_with_time_zone(DiscountCodes::CreatedAt))
                    .col(timestamp_with_time_zone(DiscountCodes::UpdatedAt))
                    .check(
                        Expr::col(DiscountCodes::UsageLimit)
                            .is_null()
                            .or(Expr::col(DiscountCodes::TimesUsed).lte(Expr::col(DiscountCodes::UsageLimit))),
                    )
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DiscountCustomerUses::Table)
                    .col(uuid(DiscountCustomerUses::CodeId))
                    .col(uuid(DiscountCustomerUses::UserId))
                    .col(
                        integer(DiscountCustomerUses::Uses)
                            .check(Expr::col(DiscountCustomerUses::Uses).gte(0)),
                    )
                    .primary_key(
                        Index::create()
                            .col(DiscountCustomerUses::CodeId)
                            .col(DiscountCustomerUses::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_discount_customer_uses_code")
                            .from(DiscountCustomerUses::Table, DiscountCustomerUses::CodeId)
                            .to(DiscountCodes::Table, DiscountCodes::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_discount_customer_uses_user")
                            .from(DiscountCustomerUses::Table, DiscountCustomerUses::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_discount_customer_uses_user_id")
                    .table(DiscountCustomerUses::Table)
                    .col(DiscountCustomerUses::UserId)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DiscountRedemptions::Table)
                    .col(pk_uuid(DiscountRedemptions::Id))
                    .col(uuid(DiscountRedemptions::CodeId))
                    .col(uuid(DiscountRedemptions::OrderId).unique_key())
                    .col(uuid(DiscountRedemptions::UserId))
                    .col(
                        big_integer(DiscountRedemptions::AmountMinor)
                            .check(Expr::col(DiscountRedemptions::AmountMinor).gte(0)),
                    )
                    .col(string_len(DiscountRedemptions::Currency, 3))
                    .col(timestamp_with_time_zone(DiscountRedemptions::CreatedAt))
                    .col(timestamp_with_time_zone_null(DiscountRedemptions::ReleasedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_discount_redemptions_code")
                            .from(DiscountRedemptions::Table, DiscountRedemptions::CodeId)
                            .to(DiscountCodes::Table, DiscountCodes::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_discount_redemptions_order")
                            .from(DiscountRedemptions::Table, DiscountRedemptions::OrderId)
                            .to(Orders::Table, Orders::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_discount_redemptions_user")
                            .from(DiscountRedemptions::Table, DiscountRedemptions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .take(),
            )
            .await?;
        for (name, column) in [
            ("ix_discount_redemptions_code_id", DiscountRedemptions::CodeId),
            ("ix_discount_redemptions_user_id", DiscountRedemptions::UserId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(DiscountRedemptions::Table)
                        .col(column)
                        .take(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DiscountRedemptions::Table.into_iden(),
            DiscountCustomerUses::Table.into_iden(),
            DiscountCodes::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).take()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum DiscountCodes {
    Table,
    Id,
    Code,
    Kind,
    Value,
    Currency,
    MinimumSubtotalMinor,
    StartsAt,
    EndsAt,
    UsageLimit,
    PerCustomerLimit,
    TimesUsed,
    Active,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DiscountCustomerUses {
    Table,
    CodeId,
    UserId,
    Uses,
}

#[derive(DeriveIden)]
enum DiscountRedemptions {
    Table,
    Id,
    CodeId,
    OrderId,
    UserId,
    AmountMinor,
    Currency,
    CreatedAt,
    ReleasedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
}
