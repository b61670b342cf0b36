//! A customer's address book: up to [`MAX_ADDRESSES`] addresses, at most one
//! of them the default shipping address. Every function takes the owner's
//! [`UserId`] and sees only that customer's rows, so one customer's address
//! is "not found" to another. Checkout copies the address into the order
//! ([`Address`] is the snapshot), so editing the book never rewrites an order.
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, PaginatorTrait, QueryOrder};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{AddressId, UserId};
use crate::shipping::CountryCode;
use crate::tables::addresses;
use crate::text::{one_line, optional_line};

/// The most addresses one customer may keep.
pub const MAX_ADDRESSES: u64 = 20;

/// An address as typed, before it is checked.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddressFields<'a> {
    pub full_name: &'a str,
    pub line1: &'a str,
    pub line2: Option<&'a str>,
    pub city: &'a str,
    pub postal_code: &'a str,
    pub region: Option<&'a str>,
    pub country_code: &'a str,
    pub phone: Option<&'a str>,
}

/// A checked postal address; also what an order keeps of where it ships.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub full_name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    pub region: Option<String>,
    pub country_code: String,
    pub phone: Option<String>,
}

impl Address {
    /// # Errors
    /// [`DomainError::InvalidInput`] naming the first bad field.
    pub fn parse(fields: AddressFields<'_>) -> Result<Self, DomainError> {
        let postal_code = one_line("postalCode", fields.postal_code, 16)?;
        if !postal_code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
        {
            return Err(DomainError::invalid(
                "postalCode",
                "must be letters, digits, spaces or '-'",
            ));
        }
        let phone = optional_line("phone", fields.phone, 32)?;
        if phone
            .as_deref()
            .is_some_and(|phone| !phone.chars().all(|c| c.is_ascii_digit() || " +-()./".contains(c)))
        {
            return Err(DomainError::invalid(
                "phone",
                "must be digits, spaces and + - ( ) . /",
            ));
        }
        Ok(Self {
            full_name: one_line("fullName", fields.full_name, 128)?,
            line1: one_line("line1", fields.line1, 128)?,
            line2: optional_line("line2", fields.line2, 128)?,
            city: one_line("city", fields.city, 64)?,
            postal_code,
            region: optional_line("region", fields.region, 64)?,
            country_code: CountryCode::parse("countryCode", fields.country_code)?
                .as_str()
                .to_owned(),
            phone,
        })
    }

    /// The destination country.
    ///
    /// # Errors
    /// Never for an address made by [`Address::parse`].
    pub fn country(&self) -> Result<CountryCode, DomainError> {
        CountryCode::parse("countryCode", &self.country_code)
    }

    /// The address as an envelope shows it, one entry per line (name,
    /// street, postal code and city, region, country).
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![self.full_name.clone(), self.line1.clone()];
        lines.extend(self.line2.clone());
        lines.push(format!("{} {}", self.postal_code, self.city));
        lines.extend(self.region.clone());
        lines.push(self.country_code.clone());
        lines
    }

    /// The copy an order keeps (JSON text).
    #[must_use]
    pub fn snapshot(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// An order's copy back; `None` for an order without one.
    #[must_use]
    pub fn from_snapshot(snapshot: Option<&str>) -> Option<Self> {
        snapshot.and_then(|json| serde_json::from_str(json).ok())
    }
}

impl From<addresses::Model> for Address {
    fn from(row: addresses::Model) -> Self {
        Self {
            full_name: row.full_name,
            line1: row.line1,
            line2: row.line2,
            city: row.city,
            postal_code: row.postal_code,
            region: row.region,
            country_code: row.country_code,
            phone: row.phone,
        }
    }
}

/// The customer's addresses, the default shipping address first, then newest first.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn list_addresses<C: ConnectionTrait>(
    conn: &C,
    owner: UserId,
) -> Result<Vec<addresses::Model>, DomainError> {
    Ok(addresses::Entity::find()
        .filter(addresses::Column::UserId.eq(owner))
        .order_by_desc(addresses::Column::IsDefaultShipping)
        .order_by_desc(addresses::Column::Id)
        .all(conn)
        .await?)
}

/// One of the customer's addresses.
///
/// # Errors
/// [`DomainError::NotFound`] when it is not theirs or does not exist.
pub async fn find_address<C: ConnectionTrait>(
    conn: &C,
    owner: UserId,
    id: AddressId,
) -> Result<addresses::Model, DomainError> {
    addresses::Entity::find_by_id(id)
        .filter(addresses::Column::UserId.eq(owner))
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound { entity: "address" })
}

/// Adds an address; it becomes the default shipping address when asked or
/// when it is the customer's first. Call inside a write transaction.
///
/// # Errors
/// [`DomainError::InvalidInput`] on `addresses` when the book is full.
pub async fn add_address<C: ConnectionTrait>(
    txn: &C,
    owner: UserId,
    address: Address,
    default_shipping: bool,
) -> Result<addresses::Model, DomainError> {
    let count = addresses::Entity::find()
        .filter(addresses::Column::UserId.eq(owner))
        .count(txn)
        .await?;
    if count >= MAX_ADDRESSES {
        return Err(DomainError::invalid(
            "addresses",
            format!("at most {MAX_ADDRESSES} addresses per customer"),
        ));
    }
    let default_shipping = default_shipping || count == 0;
    if default_shipping {
        clear_default(txn, owner).await?;
    }
    let now = Utc::now();
    let row = row(AddressId::new(), owner, address, default_shipping, now, now)
        .insert(txn)
        .await
        .map_err(|e| {
            DomainError::conflict_if_unique(e, "another address was made the default at the same time; retry")
        })?;
    Ok(row)
}

/// Replaces an address's fields; `default_shipping: Some(true)` makes it the
/// default, `Some(false)` stops it being the default, `None` leaves that be.
/// Call inside a write transaction.
///
/// # Errors
/// [`DomainError::NotFound`] when it is not the customer's.
pub async fn update_address<C: ConnectionTrait>(
    txn: &C,
    owner: UserId,
    id: AddressId,
    address: Address,
    default_shipping: Option<bool>,
) -> Result<addresses::Model, DomainError> {
    let current = find_address(txn, owner, id).await?;
    if default_shipping == Some(true) {
        clear_default(txn, owner).await?;
    }
    let row = row(
        current.id,
        owner,
        address,
        default_shipping.unwrap_or(current.is_default_shipping),
        current.created_at,
        Utc::now(),
    )
    .update(txn)
    .await?;
    Ok(row)
}

/// Every column of an address row, set.
fn row(
    id: AddressId,
    owner: UserId,
    address: Address,
    default_shipping: bool,
    created_at: chrono::DateTime<Utc>,
    updated_at: chrono::DateTime<Utc>,
) -> addresses::ActiveModel {
    addresses::ActiveModel {
        id: Set(id),
        user_id: Set(owner),
        full_name: Set(address.full_name),
        line1: Set(address.line1),
        line2: Set(address.line2),
        city: Set(address.city),
        postal_code: Set(address.postal_code),
        region: Set(address.region),
        country_code: Set(address.country_code),
        phone: Set(address.phone),
        is_default_shipping: Set(default_shipping),
        created_at: Set(created_at),
        updated_at: Set(updated_at),
    }
}

/// Deletes an address (orders keep their own copy). Deleting the default
/// leaves the customer without one until they choose another.
///
/// # Errors
/// [`DomainError::NotFound`] when it is not the customer's.
pub async fn delete_address<C: ConnectionTrait>(
    conn: &C,
    owner: UserId,
    id: AddressId,
) -> Result<(), DomainError> {
    let deleted = addresses::Entity::delete_many()
        .filter(addresses::Column::Id.eq(id))
        .filter(addresses::Column::UserId.eq(owner))
        .exec(conn)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(DomainError::NotFound { entity: "address" });
    }
    Ok(())
}

/// The customer's default shipping address, if any.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn default_shipping_address<C: ConnectionTrait>(
    conn: &C,
    owner: UserId,
) -> Result<Option<addresses::Model>, DomainError> {
    Ok(addresses::Entity::find()
        .filter(addresses::Column::UserId.eq(owner))
        .filter(addresses::Column::IsDefaultShipping.eq(true))
        .one(conn)
        .await?)
}

async fn clear_default<C: ConnectionTrait>(conn: &C, owner: UserId) -> Result<(), DomainError> {
    addresses::Entity::update_many()
        .col_expr(addresses::Column::IsDefaultShipping, Expr::value(false))
        .filter(addresses::Column::UserId.eq(owner))
        .filter(addresses::Column::IsDefaultShipping.eq(true))
        .exec(conn)
        .await?;
    Ok(())
}
