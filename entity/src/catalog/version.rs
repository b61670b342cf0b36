//! The catalog's version: one counter that goes up in the same transaction
//! as every change to a product's catalog data (a new product; name,
//! description, price or active flag changed), so a reader that sees
//! version `v` knows every change committed before it read `v`.
//!
//! A new variant, or a variant's title, price, weight or active flag
//! changed, counts too. Stock is not counted: it changes with every order, and a counter bumped
//! by every order would both serialise orders on its row and make a cache
//! keyed by it miss on every read. Readers take stock fresh instead, in the
//! same statement that reads the version ([`freshness`]).
use std::collections::HashMap;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, Query};
use sea_orm::{ConnectionTrait, DbErr};

use crate::error::DomainError;
use crate::ids::{ProductId, VariantId};
use crate::tables::product_variants;

/// The one row of `catalog_version`.
const ROW: i32 = 1;
/// The most product ids one statement of [`freshness`] asks for.
const IDS_PER_STATEMENT: usize = 1_000;

fn table() -> Alias {
    Alias::new("catalog_version")
}

/// Counts one change of catalog data. Call inside the transaction that
/// makes the change, so the two commit together (no reader can see the
/// change under the old version, or the new version without the change).
///
/// # Errors
/// [`DomainError::Database`], also when the row is missing (migrations not run).
pub async fn bump<C: ConnectionTrait>(conn: &C) -> Result<(), DomainError> {
    let update = Query::update()
        .table(table())
        .value(Alias::new("version"), Expr::col(Alias::new("version")).add(1))
        .and_where(Expr::col(Alias::new("id")).eq(ROW))
        .to_owned();
    let done = conn.execute(&update).await?;
    if done.rows_affected() != 1 {
        return Err(DbErr::RecordNotFound("catalog_version has no row: run the migrations".into()).into());
    }
    Ok(())
}

/// What a reader needs to serve cached catalog data: the catalog version,
/// and the stock on hand of the products it asked about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Freshness {
    pub version: i64,
    /// Stock by product, the sum over its active variants; a product that
    /// does not exist is absent.
    pub stock: HashMap<ProductId, i32>,
    /// Stock by variant, for every variant of those products.
    pub variant_stock: HashMap<VariantId, i32>,
}

/// The catalog version and the current stock of `ids`, read after the call
/// began: one statement per [`IDS_PER_STATEMENT`] ids (one when `ids` is
/// empty). With several statements, the version is the first one's.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn freshness<C: ConnectionTrait>(conn: &C, ids: &[ProductId]) -> Result<Freshness, DomainError> {
    let mut fresh = Freshness::default();
    let mut chunks = ids.chunks(IDS_PER_STATEMENT);
    let first = chunks.next().unwrap_or_default();
    fresh.version = read(conn, first, &mut fresh).await?;
    for chunk in chunks {
        read(conn, chunk, &mut fresh).await?;
    }
    Ok(fresh)
}

/// `SELECT c.version, v.id, v.product_id, v.stock, v.active FROM catalog_version c
/// LEFT JOIN product_variants v ON v.product_id IN (…) WHERE c.id = 1`: one
/// row even when no product matches, else one per variant. Adds each
/// product's stock (its active variants' sum) and each variant's to
/// `fresh`; returns the version. Every product has a variant, so every product asked for that
/// exists is in `stock`.
async fn read<C: ConnectionTrait>(
    conn: &C,
    ids: &[ProductId],
    fresh: &mut Freshness,
) -> Result<i64, DomainError> {
    let version = (table(), Alias::new("version"));
    let mut query = Query::select();
    query
        .column(version)
        .from(table())
        .and_where(Expr::col((table(), Alias::new("id"))).eq(ROW));
    if !ids.is_empty() {
        query
            .expr_as(
                Expr::col((product_variants::Entity, product_variants::Column::Id)),
                Alias::new("variant_id"),
            )
            .column((product_variants::Entity, product_variants::Column::ProductId))
            .column((product_variants::Entity, product_variants::Column::Stock))
            .column((product_variants::Entity, product_variants::Column::Active))
            .join(
                JoinType::LeftJoin,
                product_variants::Entity,
                Expr::col((product_variants::Entity, product_variants::Column::ProductId))
                    .is_in(ids.iter().copied()),
            );
    }
    let rows = conn.query_all(&query).await?;
    let Some(first) = rows.first() else {
        return Err(DbErr::RecordNotFound("catalog_version has no row: run the migrations".into()).into());
    };
    let version: i64 = first.try_get("", "version")?;
    if !ids.is_empty() {
        for row in &rows {
            let variant: Option<VariantId> = row.try_get("", "variant_id")?;
            let id: Option<ProductId> = row.try_get("", "product_id")?;
            let units: Option<i32> = row.try_get("", "stock")?;
            let active: Option<bool> = row.try_get("", "active")?;
            if let (Some(variant), Some(id), Some(units), Some(active)) = (variant, id, units, active) {
                *fresh.stock.entry(id).or_default() += if active { units } else { 0 };
                fresh.variant_stock.insert(variant, units);
            }
        }
    }
    Ok(version)
}
