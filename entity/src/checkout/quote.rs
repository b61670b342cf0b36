//! A checkout's money, before anything is written: the lines at today's
//! prices, shipped to an address by a method, with an optional code, in the
//! shop's tax mode. Checkout charges exactly this; a cart's estimate shows it.
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;

use crate::discounts::{self, Applicable, DiscountCode};
use crate::error::DomainError;
use crate::ids::ShippingMethodId;
use crate::money::Currency;
use crate::pricing::{PricedLine, PricingRules, TaxMode, Totals, order_totals};
use crate::shipping::{self, CountryCode, MethodOption};

/// What the customer chose besides the lines.
#[derive(Debug, Clone, Copy)]
pub struct Terms<'a> {
    pub country: CountryCode,
    pub shipping_method: ShippingMethodId,
    pub discount_code: Option<&'a DiscountCode>,
}

/// The money of a checkout and what it was computed from.
#[derive(Debug, Clone)]
pub struct Quote {
    pub totals: Totals,
    pub tax_mode: TaxMode,
    pub method: MethodOption,
    /// The code, when one was given and applies.
    pub discount: Option<Applicable>,
}

/// Prices `lines` (all in `currency`) for `terms` at `now`: the method must
/// ship to the country in that currency, the code must apply to the
/// subtotal; tax is the destination's rate in the shop's tax mode.
///
/// # Errors
/// [`DomainError::InvalidInput`] on `shippingMethodId` or `discountCode`
/// saying why; [`DomainError::NotFound`] for an unknown code.
pub async fn quote<C: ConnectionTrait>(
    conn: &C,
    lines: &[PricedLine],
    currency: Currency,
    terms: Terms<'_>,
    now: DateTime<Utc>,
) -> Result<Quote, DomainError> {
    let destination = shipping::destination(conn, terms.shipping_method, terms.country, currency).await?;
    let tax_mode = crate::shop::tax_mode(conn).await?;
    let mut rules = PricingRules {
        currency,
        tax_mode,
        tax_rate: destination.tax_rate,
        shipping: Some(destination.method.rate),
        discount: None,
    };
    let discount = match terms.discount_code {
        Some(code) => {
            let subtotal = order_totals(lines, &rules)?.subtotal;
            Some(discounts::applicable(conn, code, subtotal, now).await?)
        }
        None => None,
    };
    rules.discount = discount.map(|d| d.value);
    Ok(Quote {
        totals: order_totals(lines, &rules)?,
        tax_mode,
        method: destination.method,
        discount,
    })
}
