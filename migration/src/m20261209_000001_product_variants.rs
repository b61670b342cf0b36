//! `product_variants`: what a customer actually buys. A product (name,
//! description, slug) has one or more variants, each with its own SKU,
//! price, stock, weight, active flag and option values (`[{"name":"Size",
//! "value":"M"}]` as JSON text, the same on both databases).
//!
//! Every existing product is carried over as one variant that keeps the
//! product's id, SKU, price, stock and active flag, so an order line or a
//! stock movement written before variants existed names its variant by the
//! id it already holds.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, boolean, integer, pk_uuid, string_len, text, timestamp_with_time_zone, uuid,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ProductVariants::Table)
                    .col(pk_uuid(ProductVariants::Id))
                    .col(uuid(ProductVariants::ProductId))
                    .col(string_len(ProductVariants::Sku, 64).unique_key())
                    .col(string_len(ProductVariants::Title, 200))
                    .col(text(ProductVariants::OptionValues))
                    .col(
                        big_integer(ProductVariants::PriceMinor)
                            .check(Expr::col(ProductVariants::PriceMinor).gte(0)),
                    )
                    .col(string_len(ProductVariants::Currency, 3))
                    .col(integer(ProductVariants::Stock).check(Expr::col(ProductVariants::Stock).gte(0)))
                    .col(
                        integer(ProductVariants::WeightGrams)
                            .default(0)
                            .check(Expr::col(ProductVariants::WeightGrams).gte(0)),
                    )
                    .col(boolean(ProductVariants::Active))
                    .col(integer(ProductVariants::Position).default(0))
                    .col(timestamp_with_time_zone(ProductVariants::CreatedAt))
                    .col(timestamp_with_time_zone(ProductVariants::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_product_variants_product")
                            .from(ProductVariants::Table, ProductVariants::ProductId)
                            .to(Products::Table, Products::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_product_variants_product_id")
                    .table(ProductVariants::Table)
                    .col(ProductVariants::ProductId)
                    .col(ProductVariants::Position)
                    .take(),
            )
            .await?;
        let carry_over = Query::insert()
            .into_table(ProductVariants::Table)
            .columns([
                ProductVariants::Id,
                ProductVariants::ProductId,
                ProductVariants::Sku,
                ProductVariants::Title,
                ProductVariants::OptionValues,
                ProductVariants::PriceMinor,
                ProductVariants::Currency,
                ProductVariants::Stock,
                ProductVariants::WeightGrams,
                ProductVariants::Active,
                ProductVariants::Position,
                ProductVariants::CreatedAt,
                ProductVariants::UpdatedAt,
            ])
            .select_from(
                Query::select()
                    .column(Products::Id)
                    .column(Products::Id)
                    .column(Products::Sku)
                    .expr(Expr::val("Default"))
                    .expr(Expr::val("[]"))
                    .column(Products::PriceMinor)
                    .column(Products::Currency)
                    .column(Products::Stock)
                    .expr(Expr::val(0))
                    .column(Products::Active)
                    .expr(Expr::val(0))
                    .column(Products::CreatedAt)
                    .column(Products::UpdatedAt)
                    .from(Products::Table)
                    .take(),
            )
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .take();
        manager.exec_stmt(carry_over).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ProductVariants::Table).take())
            .await
    }
}

#[derive(DeriveIden)]
enum ProductVariants {
    Table,
    Id,
    ProductId,
    Sku,
    Title,
    OptionValues,
    PriceMinor,
    Currency,
    Stock,
    WeightGrams,
    Active,
    Position,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Products {
    Table,
    Id,
    Sku,
    PriceMinor,
    Currency,
    Stock,
    Active,
    CreatedAt,
    UpdatedAt,
}
