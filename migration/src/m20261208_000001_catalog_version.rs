//! `catalog_version`: one row whose `version` goes up in the same
//! transaction as every change to a product's catalog data (name,
//! description, price, currency, active flag, a new product). The api's
//! catalog cache compares it on every read, so a change committed by any
//! process is never served stale. Stock is not counted here: it changes
//! with every order and the cache reads it fresh (see `entity::catalog::version`).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CatalogVersion::Table)
                    .col(
                        ColumnDef::new(CatalogVersion::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(CatalogVersion::Version)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        let insert = Query::insert()
            .into_table(CatalogVersion::Table)
            .columns([CatalogVersion::Id, CatalogVersion::Version])
            .values([1.into(), 0.into()])
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .to_owned();
        manager.exec_stmt(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CatalogVersion::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum CatalogVersion {
    Table,
    Id,
    Version,
}
