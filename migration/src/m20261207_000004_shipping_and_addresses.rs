//! Where a shop ships and what it charges: `shipping_zones` (named groups
//! of countries; `shipping_zone_countries` puts each country in at most
//! one), `shipping_methods` (flat or weight-based rates per zone),
//! `tax_rates` (one rate per destination country); and the customers'
//! address book, `addresses`, with at most one default shipping address
//! per customer (a partial unique index, same SQL on both backends).
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, boolean, integer, pk_uuid, string_len, string_len_null, timestamp_with_time_zone, uuid,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

const METHOD_KINDS: &[&str] = &["FLAT", "WEIGHT"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TaxRates::Table)
                    .col(string_len(TaxRates::CountryCode, 2).primary_key())
                    .col(
                        integer(TaxRates::RateBasisPoints).check(
                            Expr::col(TaxRates::RateBasisPoints)
                                .gte(0)
                                .and(Expr::col(TaxRates::RateBasisPoints).lte(10_000)),
                        ),
                    )
                    .col(string_len(TaxRates::Name, 64))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ShippingZones::Table)
                    .col(pk_uuid(ShippingZones::Id))
                    .col(string_len(ShippingZones::Name, 64).unique_key())
                    .col(timestamp_with_time_zone(ShippingZones::CreatedAt))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ShippingZoneCountries::Table)
                    .col(string_len(ShippingZoneCountries::CountryCode, 2).primary_key())
                    .col(uuid(ShippingZoneCountries::ZoneId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_shipping_zone_countries_zone")
                            .from(ShippingZoneCountries::Table, ShippingZoneCountries::ZoneId)
                            .to(ShippingZones::Table, ShippingZones::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ShippingMethods::Table)
                    .col(pk_uuid(ShippingMethods::Id))
                    .col(uuid(ShippingMethods::ZoneId))
                    .col(string_len(ShippingMethods::Name, 64))
                    .col(
                        string_len(ShippingMethods::Kind, 16)
                            .check(Expr::col(ShippingMethods::Kind).is_in(METHOD_KINDS.iter().copied())),
                    )
                    .col(
                        big_integer(ShippingMethods::PriceMinor)
                            .check(Expr::col(ShippingMethods::PriceMinor).gte(0)),
                    )
                    .col(
                        big_integer(ShippingMethods::PerKgMinor)
                            .check(Expr::col(ShippingMethods::PerKgMinor).gte(0)),
                    )
                    .col(string_len(ShippingMethods::Currency, 3))
                    .col(boolean(ShippingMethods::Active))
                    .col(timestamp_with_time_zone(ShippingMethods::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_shipping_methods_zone")
                            .from(ShippingMethods::Table, ShippingMethods::ZoneId)
                            .to(ShippingZones::Table, ShippingZones::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Addresses::Table)
                    .col(pk_uuid(Addresses::Id))
                    .col(uuid(Addresses::UserId))
                    .col(string_len(Addresses::FullName, 128))
                    .col(string_len(Addresses::Line1, 128))
                    .col(string_len_null(Addresses::Line2, 128))
                    .col(string_len(Addresses::City, 64))
                    .col(string_len(Addresses::PostalCode, 16))
                    .col(string_len_null(Addresses::Region, 64))
                    .col(string_len(Addresses::CountryCode, 2))
                    .col(string_len_null(Addresses::Phone, 32))
                    .col(boolean(Addresses::IsDefaultShipping))
                    .col(timestamp_with_time_zone(Addresses::CreatedAt))
                    .col(timestamp_with_time_zone(Addresses::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_addresses_user")
                            .from(Addresses::Table, Addresses::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        for index in [
            Index::create()
                .name("ix_shipping_zone_countries_zone_id")
                .table(ShippingZoneCountries::Table)
                .col(ShippingZoneCountries::ZoneId)
                .take(),
            Index::create()
                .name("ix_shipping_methods_zone_id")
                .table(ShippingMethods::Table)
                .col(ShippingMethods::ZoneId)
                .take(),
            Index::create()
                .name("ix_addresses_user_id")
                .table(Addresses::Table)
                .col(Addresses::UserId)
                .take(),
            Index::create()
                .name("ux_addresses_default_shipping")
                .table(Addresses::Table)
                .col(Addresses::UserId)
                .unique()
                .and_where(Expr::col(Addresses::IsDefaultShipping).eq(true))
                .take(),
        ] {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Addresses::Table.into_iden(),
            ShippingMethods::Table.into_iden(),
            ShippingZoneCountries::Table.into_iden(),
            ShippingZones::Table.into_iden(),
            TaxRates::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).take()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum TaxRates {
    Table,
    CountryCode,
    RateBasisPoints,
    Name,
}

#[derive(DeriveIden)]
enum ShippingZones {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ShippingZoneCountries {
    Table,
    CountryCode,
    ZoneId,
}

#[derive(DeriveIden)]
enum ShippingMethods {
    Table,
    Id,
    ZoneId,
    Name,
    Kind,
    PriceMinor,
    PerKgMinor,
    Currency,
    Active,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Addresses {
    Table,
    Id,
    UserId,
    FullName,
    Line1,
    Line2,
    City,
    PostalCode,
    Region,
    CountryCode,
    Phone,
    IsDefaultShipping,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
