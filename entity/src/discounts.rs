//! Discount codes: an admin creates them; a cart checks one against its
//! subtotal ([`applicable`]); checkout uses it in the order's transaction
//! ([`redeem`]); cancelling the order gives the use back ([`release`]).
//!
//! Usage limits hold under any concurrency the same way stock does: each
//! limit is one conditional statement on a counter, inside the checkout
//! transaction — `UPDATE discount_codes SET times_used = times_used + 1
//! WHERE … times_used < usage_limit` for the total, and an upsert of the
//! customer's counter whose update only happens `WHERE uses < limit` for
//! the per-customer one. There is no read-then-write window, and CHECK
//! constraints back both up. What the discount is worth is
//! [`crate::pricing`]'s business.
use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, Condition};

use crate::error::DomainError;
use crate::ids::{DiscountCodeId, DiscountRedemptionId, OrderId, UserId};
use crate::money::{Currency, Money};
use crate::pricing::{BasisPoints, DiscountValue};
use crate::tables::discount_codes::{self, DiscountKind};
use crate::tables::{discount_customer_uses, discount_redemptions};

/// A code as customers type it: 3–32 of `A–Z 0–9 - _`, compared upper-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscountCode(String);

impl DiscountCode {
    /// # Errors
    /// [`DomainError::InvalidInput`] on `discountCode` for any other text.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let code = raw.trim().to_ascii_uppercase();
        if (3..=32).contains(&code.len())
            && code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            Ok(Self(code))
        } else {
            Err(DomainError::invalid(
                "discountCode",
                "must be 3-32 letters, digits, '-' or '_'",
            ))
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An admin's new code.
#[derive(Debug, Clone)]
pub struct NewDiscount {
    pub code: DiscountCode,
    pub value: DiscountValue,
    /// The currency of the minimum subtotal (and of a fixed amount).
    pub currency: Currency,
    pub minimum_subtotal_minor: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub usage_limit: Option<i32>,
    pub per_customer_limit: Option<i32>,
}

/// Creates an active code.
///
/// # Errors
/// [`DomainError::InvalidInput`] for a value, limit or window that makes no
/// sense; [`DomainError::Conflict`] when the code exists.
pub async fn create_discount<C: ConnectionTrait>(
    conn: &C,
    new: NewDiscount,
) -> Result<discount_codes::Model, DomainError> {
    let (kind, value) = match new.value {
        DiscountValue::Percentage(share) if share.get() > 0 => {
            (DiscountKind::Percentage, i64::from(share.get()))
        }
        DiscountValue::Fixed(amount) if amount.amount_minor > 0 && amount.currency == new.currency => {
            (DiscountKind::FixedAmount, amount.amount_minor)
        }
        _ => {
            return Err(DomainError::invalid(
                "value",
                "must be a percentage above 0 or a positive amount in the code's currency",
            ));
        }
    };
    if new.minimum_subtotal_minor < 0 {
        return Err(DomainError::invalid("minimumSubtotal", "must not be negative"));
    }
    if new.ends_at.is_some_and(|end| end <= new.starts_at) {
        return Err(DomainError::invalid("endsAt", "must be after startsAt"));
    }
    for (field, limit) in [
        ("usageLimit", new.usage_limit),
        ("perCustomerLimit", new.per_customer_limit),
    ] {
        if limit.is_some_and(|n| n < 1) {
            return Err(DomainError::invalid(field, "must be at least 1"));
        }
    }
    let now = Utc::now();
    discount_codes::ActiveModel {
        id: Set(DiscountCodeId::new()),
        code: Set(new.code.0),
        kind: Set(kind),
        value: Set(value),
        currency: Set(new.currency.code().to_owned()),
        minimum_subtotal_minor: Set(new.minimum_subtotal_minor),
        starts_at: Set(new.starts_at),
        ends_at: Set(new.ends_at),
        usage_limit: Set(new.usage_limit),
        per_customer_limit: Set(new.per_customer_limit),
        times_used: Set(0),
        active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await
    .map_err(|e| DomainError::conflict_if_unique(e, "a discount code with this code already exists"))
}

/// A code that applies to a subtotal, and what it takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applicable {
    pub id: DiscountCodeId,
    pub value: DiscountValue,
    pub per_customer_limit: Option<i32>,
}

/// Checks `code` against a subtotal at `now` without using it: a cart's
/// preview, and checkout's first step (its [`redeem`] checks again, under
/// the counter's lock).
///
/// # Errors
/// [`DomainError::NotFound`] for an unknown or switched-off code;
/// [`DomainError::InvalidInput`] on `discountCode` saying why it does not
/// apply (not started, expired, used up, subtotal too low, other currency).
pub async fn applicable<C: ConnectionTrait>(
    conn: &C,
    code: &DiscountCode,
    subtotal: Money,
    now: DateTime<Utc>,
) -> Result<Applicable, DomainError> {
    let row = discount_codes::Entity::find()
        .filter(discount_codes::Column::Code.eq(code.as_str()))
        .filter(discount_codes::Column::Active.eq(true))
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound {
            entity: "discount code",
        })?;
    if let Some(reason) = unusable(&row, now) {
        return Err(DomainError::invalid("discountCode", reason));
    }
    let currency = Currency::parse(&row.currency)?;
    if currency != subtotal.currency {
        return Err(DomainError::invalid(
            "discountCode",
            format!("applies to {currency} orders only"),
        ));
    }
    if subtotal.amount_minor < row.minimum_subtotal_minor {
        return Err(DomainError::invalid(
            "discountCode",
            format!(
                "needs a subtotal of at least {}",
                Money::new(row.minimum_subtotal_minor, currency)
            ),
        ));
    }
    let value = match row.kind {
        DiscountKind::Percentage => DiscountValue::Percentage(BasisPoints::parse("value", row.value)?),
        DiscountKind::FixedAmount => DiscountValue::Fixed(Money::new(row.value, currency)),
    };
    Ok(Applicable {
        id: row.id,
        value,
        per_customer_limit: row.per_customer_limit,
    })
}

/// Why a code cannot be used at `now`, if it cannot.
fn unusable(row: &discount_codes::Model, now: DateTime<Utc>) -> Option<&'static str> {
    if !row.active {
        Some("is no longer available")
    } else if row.starts_at > now {
        Some("is not valid yet")
    } else if row.ends_at.is_some_and(|end| end <= now) {
        Some("has expired")
    } else if row.usage_limit.is_some_and(|limit| row.times_used >= limit) {
        Some("has been used up")
    } else {
        None
    }
}

/// Uses `code` for `order_id` (worth `amount`): call inside the checkout
/// transaction, after the order row is written. One conditional update per
/// limit; a limit reached by a racing checkout fails this one with the
/// reason, and the caller's transaction rolls back.
///
/// # Errors
/// [`DomainError::InvalidInput`] on `discountCode` when the code was used
/// up, expired or switched off since [`applicable`], or this customer has
/// used it as often as allowed.
pub async fn redeem<C: ConnectionTrait>(
    conn: &C,
    code: &Applicable,
    user_id: UserId,
    order_id: OrderId,
    amount: Money,
) -> Result<(), DomainError> {
    let now = Utc::now();
    let counted = discount_codes::Entity::update_many()
        .col_expr(
            discount_codes::Column::TimesUsed,
            Expr::col(discount_codes::Column::TimesUsed).add(1),
        )
        .col_expr(discount_codes::Column::UpdatedAt, Expr::value(now))
        .filter(discount_codes::Column::Id.eq(code.id))
        .filter(discount_codes::Column::Active.eq(true))
        .filter(discount_codes::Column::StartsAt.lte(now))
        .filter(
            Condition::any()
                .add(discount_codes::Column::EndsAt.is_null())
                .add(discount_codes::Column::EndsAt.gt(now)),
        )
        .filter(
            Condition::any()
                .add(discount_codes::Column::UsageLimit.is_null())
                .add(
                    Expr::col(discount_codes::Column::TimesUsed)
                        .lt(Expr::col(discount_codes::Column::UsageLimit)),
                ),
        )
        .exec(conn)
        .await?;
    if counted.rows_affected == 0 {
        let row = discount_codes::Entity::find_by_id(code.id).one(conn).await?;
        let reason = row
            .as_ref()
            .and_then(|row| unusable(row, now))
            .unwrap_or("is no longer available");
        return Err(DomainError::invalid("discountCode", reason));
    }
    if let Some(limit) = code.per_customer_limit {
        let counted = discount_customer_uses::Entity::insert(discount_customer_uses::ActiveModel {
            code_id: Set(code.id),
            user_id: Set(user_id),
            uses: Set(1),
        })
        .on_conflict(
            OnConflict::columns([
                discount_customer_uses::Column::CodeId,
                discount_customer_uses::Column::UserId,
            ])
            .value(
                discount_customer_uses::Column::Uses,
                Expr::col((
                    discount_customer_uses::Entity,
                    discount_customer_uses::Column::Uses,
                ))
                .add(1),
            )
            .action_and_where(
                Expr::col((
                    discount_customer_uses::Entity,
                    discount_customer_uses::Column::Uses,
                ))
                .lt(limit),
            )
            .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
        if counted == 0 {
            return Err(DomainError::invalid(
                "discountCode",
                "has been used as often as one customer may",
            ));
        }
    }
    discount_redemptions::ActiveModel {
        id: Set(DiscountRedemptionId::new()),
        code_id: Set(code.id),
        order_id: Set(order_id),
        user_id: Set(user_id),
        amount_minor: Set(amount.amount_minor),
        currency: Set(amount.currency.code().to_owned()),
        created_at: Set(now),
        released_at: Set(None),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// Gives back the use of a code by a cancelled order: the redemption is
/// marked released and both counters go down, once (a second call finds
/// nothing to release). Call inside the cancelling transaction.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn release<C: ConnectionTrait>(conn: &C, order_id: OrderId) -> Result<bool, DomainError> {
    let released = discount_redemptions::Entity::update_many()
        .col_expr(discount_redemptions::Column::ReleasedAt, Expr::value(Utc::now()))
        .filter(discount_redemptions::Column::OrderId.eq(order_id))
        .filter(discount_redemptions::Column::ReleasedAt.is_null())
        .exec_with_returning(conn)
        .await?;
    let Some(redemption) = released.into_iter().next() else {
        return Ok(false);
    };
    discount_codes::Entity::update_many()
        .col_expr(
            discount_codes::Column::TimesUsed,
            Expr::col(discount_codes::Column::TimesUsed).sub(1),
        )
        .filter(discount_codes::Column::Id.eq(redemption.code_id))
        .filter(discount_codes::Column::TimesUsed.gt(0))
        .exec(conn)
        .await?;
    discount_customer_uses::Entity::update_many()
        .col_expr(
            discount_customer_uses::Column::Uses,
            Expr::col(discount_customer_uses::Column::Uses).sub(1),
        )
        .filter(discount_customer_uses::Column::CodeId.eq(redemption.code_id))
        .filter(discount_customer_uses::Column::UserId.eq(redemption.user_id))
        .filter(discount_customer_uses::Column::Uses.gt(0))
        .exec(conn)
        .await?;
    Ok(true)
}
