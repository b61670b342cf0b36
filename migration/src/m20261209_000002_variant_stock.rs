//! Stock moves to variants. `stock_movements.variant_id` and
//! `order_lines.variant_id` name the variant a movement or a line is about,
//! and order lines snapshot the variant's `sku` and `variant_title` beside
//! the product name they already held. Rows written before variants existed
//! are backfilled with their product's id (the carried-over variant kept
//! it, see [`super::m20261209_000001_product_variants`]), the product's SKU
//! and the title "Default".
//!
//! `products.stock` is dropped: stock lives only on variants from now on,
//! and a column nobody maintains would be read by someone, one day, as
//! the truth. Both databases can drop it in place — its only constraint is
//! its own column CHECK, which SQLite's `DROP COLUMN` allows (it refuses
//! columns that are indexed, keyed or named by another column's or the
//! table's CHECK; `stock` is none of these).
//!
//! On PostgreSQL the new `variant_id` columns are NOT NULL with a foreign
//! key to `product_variants`; SQLite cannot add either to an existing
//! column without rebuilding the table, so there they stay nullable and
//! unkeyed, and `entity` (the only writer) always sets them.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{integer, string_len, uuid_null};
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == DbBackend::Postgres;
        let conn = manager.get_connection();
        manager
            .alter_table(
                Table::alter()
                    .table(StockMovements::Table)
                    .add_column(uuid_null(StockMovements::VariantId))
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OrderLines::Table)
                    .add_column(uuid_null(OrderLines::VariantId))
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OrderLines::Table)
                    .add_column(string_len(OrderLines::Sku, 64).default(""))
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OrderLines::Table)
                    .add_column(string_len(OrderLines::VariantTitle, 200).default("Default"))
                    .take(),
            )
            .await?;
        conn.execute_unprepared("UPDATE stock_movements SET variant_id = product_id")
            .await?;
        conn.execute_unprepared(
            "UPDATE order_lines SET variant_id = product_id, variant_title = 'Default', \
             sku = COALESCE((SELECT p.sku FROM products p WHERE p.id = order_lines.product_id), '')",
        )
        .await?;
        if postgres {
            for (table, fk) in [
                ("stock_movements", "fk_stock_movements_variant"),
                ("order_lines", "fk_order_lines_variant"),
            ] {
                conn.execute_unprepared(&format!(
                    "ALTER TABLE {table} ALTER COLUMN variant_id SET NOT NULL, \
                     ADD CONSTRAINT {fk} FOREIGN KEY (variant_id) REFERENCES product_variants (id) \
                     ON DELETE RESTRICT"
                ))
                .await?;
            }
        }
        manager
            .create_index(
                Index::create()
                    .name("ix_stock_movements_variant_id")
                    .table(StockMovements::Table)
                    .col(StockMovements::VariantId)
                    .col(StockMovements::CreatedAt)
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_order_lines_variant_id")
                    .table(OrderLines::Table)
                    .col(OrderLines::VariantId)
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Products::Table)
                    .drop_column(Products::Stock)
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        manager
            .alter_table(
                Table::alter()
                    .table(Products::Table)
                    .add_column(
                        integer(Products::Stock)
                            .default(0)
                            .check(Expr::col(Products::Stock).gte(0)),
                    )
                    .take(),
            )
            .await?;
        conn.execute_unprepared(
            "UPDATE products SET stock = COALESCE((SELECT SUM(v.stock) FROM product_variants v \
             WHERE v.product_id = products.id), 0)",
        )
        .await?;
        for (table, index) in [
            (StockMovements::Table.into_iden(), "ix_stock_movements_variant_id"),
            (OrderLines::Table.into_iden(), "ix_order_lines_variant_id"),
        ] {
            manager
                .drop_index(Index::drop().name(index).table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(StockMovements::Table)
                    .drop_column(StockMovements::VariantId)
                    .take(),
            )
            .await?;
        for column in [OrderLines::VariantId, OrderLines::Sku, OrderLines::VariantTitle] {
            manager
                .alter_table(Table::alter().table(OrderLines::Table).drop_column(column).take())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum StockMovements {
    Table,
    VariantId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OrderLines {
    Table,
    VariantId,
    Sku,
    VariantTitle,
}

#[derive(DeriveIden)]
enum Products {
    Table,
    Stock,
}
