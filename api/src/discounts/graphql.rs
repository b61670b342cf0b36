use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::discounts::{self, DiscountCode as Code, NewDiscount};
use entity::money::{Currency, Money};
use entity::pricing::{BasisPoints, DiscountValue};
use entity::tables::discount_codes::{self, DiscountKind};

use crate::auth::require_admin;
use crate::errors::GqlResultExt;
use crate::money::{MoneyView, money};
use crate::{ids, write_txn};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::tables::discount_codes::DiscountKind")]
pub enum DiscountKindView {
    /// `value` is in basis points: 1000 takes 10 % off the goods.
    Percentage,
    /// `value` is in minor units of `currency`.
    FixedAmount,
}

/// A code customers type at checkout, as its admin sees it.
#[derive(SimpleObject)]
pub struct DiscountCode {
    id: ID,
    code: String,
    kind: DiscountKindView,
    value: i64,
    minimum_subtotal: MoneyView,
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    usage_limit: Option<i32>,
    per_customer_limit: Option<i32>,
    /// Orders that carry it now (a cancelled order gives its use back).
    times_used: i32,
    active: bool,
}

impl From<discount_codes::Model> for DiscountCode {
    fn from(row: discount_codes::Model) -> Self {
        Self {
            id: ids::to_gql(row.id),
            code: row.code,
            kind: row.kind.into(),
            value: row.value,
            minimum_subtotal: money(row.minimum_subtotal_minor, &row.currency),
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            usage_limit: row.usage_limit,
            per_customer_limit: row.per_customer_limit,
            times_used: row.times_used,
            active: row.active,
        }
    }
}

#[derive(InputObject)]
pub struct DiscountCodeInput {
    /// 3-32 letters, digits, '-' or '_'; customers may type it in any case.
    code: String,
    kind: DiscountKindView,
    /// Basis points for a percentage (1-10000), minor units for a fixed amount.
    value: i64,
    currency: String,
    #[graphql(default = 0)]
    minimum_subtotal_minor: i64,
    /// Defaults to now.
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    /// How many orders may carry it in all; null for no limit.
    usage_limit: Option<i32>,
    /// How many orders of one customer may carry it; null for no limit.
    per_customer_limit: Option<i32>,
}

#[derive(Default)]
pub struct DiscountsMutation;

#[Object]
impl DiscountsMutation {
    /// Admin: a new, active discount code.
    async fn create_discount_code(
        &self,
        ctx: &Context<'_>,
        input: DiscountCodeInput,
    ) -> async_graphql::Result<DiscountCode> {
        require_admin(ctx)?;
        let currency = Currency::parse(&input.currency)
            .map_err(entity::DomainError::from)
            .or_gql(ctx)?;
        let value = match DiscountKind::from(input.kind) {
            DiscountKind::Percentage => {
                DiscountValue::Percentage(BasisPoints::parse("value", input.value).or_gql(ctx)?)
            }
            DiscountKind::FixedAmount => DiscountValue::Fixed(Money::new(input.value, currency)),
        };
        let new = NewDiscount {
            code: Code::parse(&input.code).or_gql(ctx)?,
            value,
            currency,
            minimum_subtotal_minor: input.minimum_subtotal_minor,
            starts_at: input.starts_at.unwrap_or_else(Utc::now),
            ends_at: input.ends_at,
            usage_limit: input.usage_limit,
            per_customer_limit: input.per_customer_limit,
        };
        let row = write_txn(ctx, |txn| Box::pin(discounts::create_discount(txn, new.clone()))).await?;
        Ok(row.into())
    }
}
