//! The GraphQL `Money` type: integer minor units, currency and a display string.
use async_graphql::SimpleObject;

/// An amount of money. `amountMinor` is in the currency's minor unit (cents).
#[derive(SimpleObject, Debug, Clone)]
#[graphql(name = "Money")]
pub struct MoneyView {
    pub amount_minor: i64,
    pub currency: String,
    /// For display, e.g. `€12.34`.
    pub formatted: String,
}

impl From<entity::money::Money> for MoneyView {
    fn from(money: entity::money::Money) -> Self {
        Self {
            amount_minor: money.amount_minor,
            currency: money.currency.code().to_owned(),
            formatted: money.to_string(),
        }
    }
}

/// Builds the view from stored columns; a stored currency is always valid,
/// and an unknown one still shows its code rather than failing the query.
#[must_use]
pub fn money(amount_minor: i64, currency: &str) -> MoneyView {
    match entity::money::Money::from_parts(amount_minor, currency) {
        Ok(m) => m.into(),
        Err(_) => MoneyView {
            amount_minor,
            currency: currency.to_owned(),
            formatted: format!("{amount_minor} {currency}"),
        },
    }
}
