//! What an order placed through checkout keeps of it, so that editing an
//! address, a shipping method, a tax rate or a code later never rewrites it:
//! its money (`subtotal_minor`, `discount_minor`, `shipping_minor`,
//! `tax_minor`, and the `tax_mode` the shop had), the shipping address (a
//! JSON copy), the shipping method's id and name, and the discount code.
//! Orders placed before carry their total as subtotal and zeros beside it.
//!
//! `shop_settings`: one row of settings that every api and worker process
//! reads from the database (so they never disagree): the tax mode.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, integer, string_len, string_len_null, text_null, timestamp_with_time_zone, uuid_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TAX_MODES: &[&str] = &["INCLUSIVE", "EXCLUSIVE"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            big_integer(Orders::SubtotalMinor).default(0).take(),
            big_integer(Orders::DiscountMinor).default(0).take(),
            big_integer(Orders::ShippingMinor).default(0).take(),
            big_integer(Orders::TaxMinor).default(0).take(),
            string_len(Orders::TaxMode, 16)
                .default("EXCLUSIVE")
                .check(Expr::col(Orders::TaxMode).is_in(TAX_MODES.iter().copied()))
                .take(),
            text_null(Orders::ShippingAddress).take(),
            uuid_null(Orders::ShippingMethodId).take(),
            string_len_null(Orders::ShippingMethodName, 100).take(),
            string_len_null(Orders::DiscountCode, 64).take(),
        ];
        // SQLite adds one column per ALTER TABLE.
        for column in columns {
            manager
                .alter_table(Table::alter().table(Orders::Table).add_column(column).take())
                .await?;
        }
        manager
            .exec_stmt(
                Query::update()
                    .table(Orders::Table)
                    .value(Orders::SubtotalMinor, Expr::col(Orders::TotalMinor))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ShopSettings::Table)
                    .col(integer(ShopSettings::Id).primary_key())
                    .col(
                        string_len(ShopSettings::TaxMode, 16)
                            .check(Expr::col(ShopSettings::TaxMode).is_in(TAX_MODES.iter().copied())),
                    )
                    .col(timestamp_with_time_zone(ShopSettings::UpdatedAt))
                    .take(),
            )
            .await?;
        let insert = Query::insert()
            .into_table(ShopSettings::Table)
            .columns([ShopSettings::Id, ShopSettings::TaxMode, ShopSettings::UpdatedAt])
            .values([1.into(), "EXCLUSIVE".into(), Expr::current_timestamp()])
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .take();
        manager.exec_stmt(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ShopSettings::Table).take())
            .await?;
        for column in [
            Orders::SubtotalMinor,
            Orders::DiscountMinor,
            Orders::ShippingMinor,
            Orders::TaxMinor,
            Orders::TaxMode,
            Orders::ShippingAddress,
            Orders::ShippingMethodId,
            Orders::ShippingMethodName,
            Orders::DiscountCode,
        ] {
            manager
                .alter_table(Table::alter().table(Orders::Table).drop_column(column).take())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    TotalMinor,
    SubtotalMinor,
    DiscountMinor,
    ShippingMinor,
    TaxMinor,
    TaxMode,
    ShippingAddress,
    ShippingMethodId,
    ShippingMethodName,
    DiscountCode,
}

#[derive(DeriveIden)]
enum ShopSettings {
    Table,
    Id,
    TaxMode,
    UpdatedAt,
}
