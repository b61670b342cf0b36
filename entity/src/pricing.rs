//! An order's money, computed in one place: subtotal, discount, shipping,
//! tax and total, each [`Money`] in the order's currency.
//!
//! Checkout, the cart's preview and the order snapshot all call
//! [`order_totals`]; no resolver or job adds prices itself.
//!
//! The rules, in order:
//! 1. **Subtotal**: the sum of each line's unit price × quantity, at the
//!    prices the shop shows (tax included in a [`TaxMode::Inclusive`] shop).
//! 2. **Discount** on the goods only, never on shipping: a percentage of the
//!    subtotal (rounded half away from zero to the minor unit), or a fixed
//!    amount; never more than the subtotal.
//! 3. **Shipping**: a flat rate, or a base plus a rate per started kilogram
//!    of the lines' total weight; shipping prices follow the shop's tax mode
//!    like product prices.
//! 4. **Tax** on the discounted goods plus shipping, once on the order's
//!    total (not per line, so there is one rounding): added on top in an
//!    exclusive shop; in an inclusive shop the tax already in the price is
//!    shown (`taxable − taxable / (1 + rate)`), and the total does not change.
//! 5. **Total** = subtotal − discount + shipping (+ tax when exclusive).
use sea_orm::sea_query::StringLen;

use crate::catalog::Quantity;
use crate::error::DomainError;
use crate::money::{Currency, Money, MoneyError};

/// Basis points in one whole (100 %).
const WHOLE: i64 = 10_000;

/// Whether the shop's prices include tax (EU shops) or tax is added at
/// checkout (US shops). One setting per shop (`crate::shop`), kept on
/// every order it priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum TaxMode {
    #[sea_orm(string_value = "INCLUSIVE")]
    Inclusive,
    #[sea_orm(string_value = "EXCLUSIVE")]
    Exclusive,
}

/// A share in basis points: 2000 is 20 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasisPoints(u32);

impl BasisPoints {
    /// # Errors
    /// [`DomainError::InvalidInput`] on `field` unless `0 ..= 10000` (0–100 %).
    pub fn parse(field: &'static str, raw: i64) -> Result<Self, DomainError> {
        u32::try_from(raw)
            .ok()
            .filter(|bp| i64::from(*bp) <= WHOLE)
            .map(Self)
            .ok_or_else(|| DomainError::invalid(field, "must be between 0 and 10000 basis points (0-100 %)"))
    }

    #[must_use]
    pub fn get(self) -> u32 {
        self.0
    }
}

/// How a shipping method charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShippingRate {
    Flat(Money),
    /// `base` plus `per_kg` for every started kilogram (1 g to 1000 g is one).
    ByWeight {
        base: Money,
        per_kg: Money,
    },
}

/// What a discount code takes off the goods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscountValue {
    Percentage(BasisPoints),
    Fixed(Money),
}

/// One line as priced today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PricedLine {
    pub unit_price: Money,
    pub quantity: Quantity,
    /// Weight of one unit, in grams.
    pub unit_weight_grams: u32,
}

/// Everything [`order_totals`] needs besides the lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PricingRules {
    pub currency: Currency,
    pub tax_mode: TaxMode,
    /// The destination's tax rate.
    pub tax_rate: BasisPoints,
    /// `None` before a shipping method is chosen (a cart's preview).
    pub shipping: Option<ShippingRate>,
    pub discount: Option<DiscountValue>,
}

/// An order's money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub subtotal: Money,
    pub discount: Money,
    pub shipping: Money,
    /// Added to the total when exclusive; the part of it already in the
    /// prices when inclusive.
    pub tax: Money,
    pub total: Money,
}

/// The one computation of an order's money (see the module's rules).
///
/// # Errors
/// [`DomainError::Money`] when an amount is in another currency than
/// `rules.currency` or the sums leave `i64`.
pub fn order_totals(lines: &[PricedLine], rules: &PricingRules) -> Result<Totals, DomainError> {
    let currency = rules.currency;
    let subtotal = Money::sum(
        currency,
        lines
            .iter()
            .map(|line| line.unit_price.checked_mul(i64::from(line.quantity.get())))
            .collect::<Result<Vec<_>, _>>()?,
    )?;
    let discount = match rules.discount {
        None => Money::zero(currency),
        Some(DiscountValue::Percentage(share)) => {
            Money::new(part(subtotal.amount_minor, share.0.into(), WHOLE)?, currency)
        }
        Some(DiscountValue::Fixed(amount)) => {
            let amount = Money::zero(currency).checked_add(amount)?;
            Money::new(amount.amount_minor.min(subtotal.amount_minor), currency)
        }
    };
    let shipping = match rules.shipping {
        None => Money::zero(currency),
        Some(ShippingRate::Flat(amount)) => Money::zero(currency).checked_add(amount)?,
        Some(ShippingRate::ByWeight { base, per_kg }) => {
            let grams: i64 = lines
                .iter()
                .map(|line| i64::from(line.unit_weight_grams) * i64::from(line.quantity.get()))
                .sum();
            let started_kgs = (grams + 999) / 1000;
            Money::zero(currency)
                .checked_add(base)?
                .checked_add(per_kg.checked_mul(started_kgs)?)?
        }
    };
    let taxable = subtotal.checked_sub(discount)?.checked_add(shipping)?;
    let rate = i64::from(rules.tax_rate.0);
    let (tax, total) = match rules.tax_mode {
        TaxMode::Exclusive => {
            let tax = Money::new(part(taxable.amount_minor, rate, WHOLE)?, currency);
            (tax, taxable.checked_add(tax)?)
        }
        TaxMode::Inclusive => {
            let net = part(taxable.amount_minor, WHOLE, WHOLE + rate)?;
            (taxable.checked_sub(Money::new(net, currency))?, taxable)
        }
    };
    Ok(Totals {
        subtotal,
        discount,
        shipping,
        tax,
        total,
    })
}

/// `amount × numerator / denominator`, rounded half away from zero.
fn part(amount: i64, numerator: i64, denominator: i64) -> Result<i64, MoneyError> {
    let scaled = i128::from(amount) * i128::from(numerator);
    let denominator = i128::from(denominator);
    let half = denominator / 2;
    let rounded = if scaled >= 0 {
        (scaled + half) / denominator
    } else {
        (scaled - half) / denominator
    };
    i64::try_from(rounded).map_err(|_| MoneyError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(cents: i64) -> Money {
        Money::new(cents, Currency::parse("EUR").expect("EUR"))
    }

    fn line(cents: i64, quantity: i32, grams: u32) -> PricedLine {
        PricedLine {
            unit_price: eur(cents),
            quantity: Quantity::parse(quantity).expect("valid"),
            unit_weight_grams: grams,
        }
    }

    fn rules(
        tax_mode: TaxMode,
        shipping: Option<ShippingRate>,
        discount: Option<DiscountValue>,
    ) -> PricingRules {
        PricingRules {
            currency: Currency::parse("EUR").expect("EUR"),
            tax_mode,
            tax_rate: BasisPoints::parse("taxRate", 2000).expect("valid"),
            shipping,
            discount,
        }
    }

    fn cents(totals: &Totals) -> [i64; 5] {
        [
            totals.subtotal.amount_minor,
            totals.discount.amount_minor,
            totals.shipping.amount_minor,
            totals.tax.amount_minor,
            totals.total.amount_minor,
        ]
    }

    #[test]
    fn an_exclusive_shop_adds_tax_on_the_discounted_goods_and_the_shipping() {
        // 2 × 19.99 + 1 × 5.00 = 44.98; 10 % off = 4.50 (4.498 rounds up);
        // shipping 4.90; taxable 45.38; 20 % tax = 9.076 → 9.08; total 54.46.
        let totals = order_totals(
            &[line(1999, 2, 200), line(500, 1, 100)],
            &rules(
                TaxMode::Exclusive,
                Some(ShippingRate::Flat(eur(490))),
                Some(DiscountValue::Percentage(
                    BasisPoints::parse("value", 1000).expect("valid"),
                )),
            ),
        )
        .expect("valid");
        assert_eq!(cents(&totals), [4498, 450, 490, 908, 5446]);
    }

    #[test]
    fn an_inclusive_shop_shows_the_tax_inside_a_total_that_does_not_change() {
        // Same basket, prices include 20 %: taxable 45.38 is the total;
        // net 45.38 / 1.2 = 37.8166… → 37.82, so the tax shown is 7.56.
        let totals = order_totals(
            &[line(1999, 2, 200), line(500, 1, 100)],
            &rules(
                TaxMode::Inclusive,
                Some(ShippingRate::Flat(eur(490))),
                Some(DiscountValue::Percentage(
                    BasisPoints::parse("value", 1000).expect("valid"),
                )),
            ),
        )
        .expect("valid");
        assert_eq!(cents(&totals), [4498, 450, 490, 756, 4538]);
    }

    #[test]
    fn a_fixed_discount_never_takes_more_than_the_goods_and_never_touches_shipping() {
        let totals = order_totals(
            &[line(800, 1, 0)],
            &rules(
                TaxMode::Exclusive,
                Some(ShippingRate::Flat(eur(500))),
                Some(DiscountValue::Fixed(eur(1000))),
            ),
        )
        .expect("valid");
        // Goods free, shipping 5.00 + 20 % tax.
        assert_eq!(cents(&totals), [800, 800, 500, 100, 600]);
    }

    #[test]
    fn weight_based_shipping_charges_every_started_kilogram() {
        // 3 × 400 g = 1.2 kg → two started kilograms: 3.00 + 2 × 1.50.
        let totals = order_totals(
            &[line(1000, 3, 400)],
            &rules(
                TaxMode::Exclusive,
                Some(ShippingRate::ByWeight {
                    base: eur(300),
                    per_kg: eur(150),
                }),
                None,
            ),
        )
        .expect("valid");
        assert_eq!(totals.shipping.amount_minor, 600);
        assert_eq!(totals.total.amount_minor, (3000 + 600) * 12 / 10);
    }

    #[test]
    fn a_cart_without_shipping_or_discount_is_its_goods_plus_tax() {
        let totals =
            order_totals(&[line(1234, 1, 0)], &rules(TaxMode::Exclusive, None, None)).expect("valid");
        // 20 % of 12.34 = 2.468 → 2.47.
        assert_eq!(cents(&totals), [1234, 0, 0, 247, 1481]);
        let empty = order_totals(&[], &rules(TaxMode::Inclusive, None, None)).expect("valid");
        assert_eq!(cents(&empty), [0; 5]);
    }

    #[test]
    fn another_currency_is_an_error_not_a_wrong_number() {
        let usd = Money::new(500, Currency::parse("USD").expect("USD"));
        let err = order_totals(
            &[line(1000, 1, 0)],
            &rules(TaxMode::Exclusive, Some(ShippingRate::Flat(usd)), None),
        )
        .expect_err("an error");
        assert!(
            matches!(err, DomainError::Money(MoneyError::CurrencyMismatch { .. })),
            "{err}"
        );
    }

    #[test]
    fn rates_outside_zero_to_one_hundred_percent_are_refused() {
        assert!(BasisPoints::parse("taxRate", 10_001).is_err());
        assert!(BasisPoints::parse("taxRate", -1).is_err());
        assert_eq!(
            BasisPoints::parse("taxRate", 10_000).expect("valid").get(),
            10_000
        );
    }
}
