//! The shop's settings, read from the database by every process (api and
//! workers agree without sharing configuration): whether prices include tax.
use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;

use crate::error::DomainError;
use crate::pricing::TaxMode;
use crate::tables::shop_settings;

const ROW: i32 = 1;

/// The shop's tax mode (exclusive until an admin says otherwise).
///
/// # Errors
/// [`DomainError::Database`].
pub async fn tax_mode<C: ConnectionTrait>(conn: &C) -> Result<TaxMode, DomainError> {
    Ok(shop_settings::Entity::find_by_id(ROW)
        .one(conn)
        .await?
        .map_or(TaxMode::Exclusive, |row| row.tax_mode))
}

/// Sets the shop's tax mode; orders already placed keep theirs.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn set_tax_mode<C: ConnectionTrait>(conn: &C, mode: TaxMode) -> Result<TaxMode, DomainError> {
    let row = shop_settings::ActiveModel {
        id: Set(ROW),
        tax_mode: Set(mode),
        updated_at: Set(Utc::now()),
    };
    shop_settings::Entity::insert(row)
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(shop_settings::Column::Id)
                .update_columns([shop_settings::Column::TaxMode, shop_settings::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(mode)
}
