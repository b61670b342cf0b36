//! Money: integer minor units plus an ISO 4217 currency. Never floats.
//!
//! Arithmetic is checked: adding two currencies or overflowing an `i64` is an
//! error, not a wrong number.
use std::fmt;

use serde::{Deserialize, Serialize};

/// The currencies the shop accepts, with their minor-unit exponent and symbol.
const CURRENCIES: &[(&str, u32, &str)] = &[
    ("USD", 2, "$"),
    ("EUR", 2, "€"),
    ("GBP", 2, "£"),
    ("CHF", 2, "CHF "),
    ("SEK", 2, "SEK "),
    ("JPY", 0, "¥"),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unsupported currency {0:?}: expected one of USD, EUR, GBP, CHF, SEK, JPY")]
    UnknownCurrency(String),
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("amount out of range")]
    Overflow,
}

/// An ISO 4217 code the shop supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(&'static str);

impl Currency {
    /// Parses a currency code, case-insensitively.
    ///
    /// # Errors
    /// [`MoneyError::UnknownCurrency`] for a code the shop does not support.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let upper = code.trim().to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|(c, _, _)| *c == upper)
            .map(|(c, _, _)| Self(c))
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))
    }

    #[must_use]
    pub fn code(self) -> &'static str {
        self.0
    }

    fn info(self) -> (u32, &'static str) {
        CURRENCIES
            .iter()
            .find(|(c, _, _)| *c == self.0)
            .map_or((2, ""), |(_, exp, sym)| (*exp, *sym))
    }

    /// Number of digits after the decimal point (2 for EUR, 0 for JPY).
    #[must_use]
    pub fn exponent(self) -> u32 {
        self.info().0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Self::parse(&code).map_err(serde::de::Error::custom)
    }
}

/// An amount of money in minor units (cents) of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    #[must_use]
    pub fn new(amount_minor: i64, currency: Currency) -> Self {
        Self {
            amount_minor,
            currency,
        }
    }

    #[must_use]
    pub fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// Builds money from stored columns.
    ///
    /// # Errors
    /// [`MoneyError::UnknownCurrency`] when the stored code is not supported.
    pub fn from_parts(amount_minor: i64, currency: &str) -> Result<Self, MoneyError> {
        Ok(Self::new(amount_minor, Currency::parse(currency)?))
    }

    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] for different currencies,
    /// [`MoneyError::Overflow`] past `i64`.
    pub fn checked_add(self, other: Self) -> Result<Self, MoneyError> {
        self.same_currency(other)?;
        let amount = self
            .amount_minor
            .checked_add(other.amount_minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Self::new(amount, self.currency))
    }

    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] for different currencies,
    /// [`MoneyError::Overflow`] past `i64`.
    pub fn checked_sub(self, other: Self) -> Result<Self, MoneyError> {
        self.same_currency(other)?;
        let amount = self
            .amount_minor
            .checked_sub(other.amount_minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Self::new(amount, self.currency))
    }

    /// The price of `quantity` units.
    ///
    /// # Errors
    /// [`MoneyError::Overflow`] past `i64`.
    pub fn checked_mul(self, quantity: i64) -> Result<Self, MoneyError> {
        let amount = self
            .amount_minor
            .checked_mul(quantity)
            .ok_or(MoneyError::Overflow)?;
        Ok(Self::new(amount, self.currency))
    }

    /// Sums amounts that must all be in `currency`.
    ///
    /// # Errors
    /// As [`Money::checked_add`].
    pub fn sum(currency: Currency, items: impl IntoIterator<Item = Self>) -> Result<Self, MoneyError> {
        items
            .into_iter()
            .try_fold(Self::zero(currency), Self::checked_add)
    }

    fn same_currency(self, other: Self) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

impl fmt::Display for Money {
    /// `$12.34`, `€0.05`, `¥1200`, `-£3.00`, `CHF 10.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (exponent, symbol) = self.currency.info();
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        if exponent == 0 {
            return write!(f, "{sign}{symbol}{abs}");
        }
        let scale = 10u64.pow(exponent);
        let width = exponent as usize;
        write!(f, "{sign}{symbol}{}.{:0width$}", abs / scale, abs % scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::parse("EUR").expect("EUR is supported"))
    }

    fn usd(amount: i64) -> Money {
        Money::new(amount, Currency::parse("usd").expect("USD is supported"))
    }

    #[test]
    fn formats_minor_units_with_symbol_and_padding() {
        assert_eq!(eur(1234).to_string(), "€12.34");
        assert_eq!(eur(5).to_string(), "€0.05");
        assert_eq!(eur(0).to_string(), "€0.00");
        assert_eq!(usd(-300).to_string(), "-$3.00");
        assert_eq!(Money::from_parts(1200, "JPY").expect("JPY").to_string(), "¥1200");
        assert_eq!(
            Money::from_parts(1000, "CHF").expect("CHF").to_string(),
            "CHF 10.00"
        );
        assert_eq!(usd(i64::MIN).to_string(), "-$92233720368547758.08");
    }

    #[test]
    fn adds_subtracts_multiplies_and_sums_in_one_currency() {
        assert_eq!(eur(150).checked_add(eur(275)), Ok(eur(425)));
        assert_eq!(eur(150).checked_sub(eur(275)), Ok(eur(-125)));
        assert_eq!(eur(199).checked_mul(3), Ok(eur(597)));
        let total = Money::sum(eur(0).currency, [eur(100), eur(250), eur(1)]);
        assert_eq!(total, Ok(eur(351)));
        assert_eq!(Money::sum(eur(0).currency, []), Ok(eur(0)));
    }

    #[test]
    fn mixing_currencies_is_an_error() {
        let err = eur(100).checked_add(usd(100)).expect_err("EUR + USD must fail");
        assert_eq!(
            err,
            MoneyError::CurrencyMismatch {
                left: eur(0).currency,
                right: usd(0).currency
            }
        );
        assert!(eur(100).checked_sub(usd(1)).is_err());
        assert!(Money::sum(eur(0).currency, [eur(1), usd(1)]).is_err());
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        assert_eq!(eur(i64::MAX).checked_add(eur(1)), Err(MoneyError::Overflow));
        assert_eq!(eur(i64::MAX / 2 + 1).checked_mul(2), Err(MoneyError::Overflow));
        assert_eq!(eur(i64::MIN).checked_sub(eur(1)), Err(MoneyError::Overflow));
    }

    #[test]
    fn unknown_currency_codes_are_rejected() {
        assert!(matches!(
            Currency::parse("XXX"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert!(matches!(Currency::parse(""), Err(MoneyError::UnknownCurrency(_))));
        assert_eq!(Currency::parse(" gbp ").map(Currency::code), Ok("GBP"));
    }

    #[test]
    fn money_round_trips_through_json() {
        let json = serde_json::to_string(&eur(995)).expect("serialize");
        assert_eq!(json, r#"{"amount_minor":995,"currency":"EUR"}"#);
        let back: Money = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, eur(995));
        assert!(serde_json::from_str::<Money>(r#"{"amount_minor":1,"currency":"ABC"}"#).is_err());
    }
}
