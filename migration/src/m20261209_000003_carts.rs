//! `carts` and `cart_lines`: server-side carts for guests and customers.
//!
//! A cart is found by the SHA-256 of its secret token (`token_hash`, never
//! the token itself); a customer has at most one cart (unique `user_id`,
//! which allows any number of guest carts, whose `user_id` is NULL, on both
//! backends). A line is one variant per cart (the primary key), so adding
//! the same variant twice merges into one row. `updated_at` is indexed for
//! the expiry of abandoned carts.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, integer, pk_uuid, string_len, string_len_null, timestamp_with_time_zone, uuid, uuid_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Carts::Table)
                    .col(pk_uuid(Carts::Id))
                    .col(string_len(Carts::TokenHash, 64).unique_key())
                    .col(uuid_null(Carts::UserId))
                    .col(string_len_null(Carts::Currency, 3))
                    .col(timestamp_with_time_zone(Carts::CreatedAt))
                    .col(timestamp_with_time_zone(Carts::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_carts_user")
                            .from(Carts::Table, Carts::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CartLines::Table)
                    .col(uuid(CartLines::CartId))
                    .col(uuid(CartLines::VariantId))
                    .col(
                        integer(CartLines::Quantity).check(
                            Expr::col(CartLines::Quantity)
                                .gte(1)
                                .and(Expr::col(CartLines::Quantity).lte(1000)),
                        ),
                    )
                    .col(
                        big_integer(CartLines::UnitPriceMinorSeen)
                            .check(Expr::col(CartLines::UnitPriceMinorSeen).gte(0)),
                    )
                    .col(timestamp_with_time_zone(CartLines::CreatedAt))
                    .col(timestamp_with_time_zone(CartLines::UpdatedAt))
                    .primary_key(Index::create().col(CartLines::CartId).col(CartLines::VariantId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_cart_lines_cart")
                            .from(CartLines::Table, CartLines::CartId)
                            .to(Carts::Table, Carts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_cart_lines_variant")
                            .from(CartLines::Table, CartLines::VariantId)
                            .to(ProductVariants::Table, ProductVariants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        for index in [
            Index::create()
                .name("ux_carts_user_id")
                .table(Carts::Table)
                .col(Carts::UserId)
                .unique()
                .take(),
            Index::create()
                .name("ix_carts_updated_at")
                .table(Carts::Table)
                .col(Carts::UpdatedAt)
                .take(),
            Index::create()
                .name("ix_cart_lines_variant_id")
                .table(CartLines::Table)
                .col(CartLines::VariantId)
                .take(),
        ] {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CartLines::Table).take())
            .await?;
        manager.drop_table(Table::drop().table(Carts::Table).take()).await
    }
}

#[derive(DeriveIden)]
enum Carts {
    Table,
    Id,
    TokenHash,
    UserId,
    Currency,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CartLines {
    Table,
    CartId,
    VariantId,
    Quantity,
    UnitPriceMinorSeen,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ProductVariants {
    Table,
    Id,
}
