//! Payments: the status of the one payment an order has.
//!
//! AUTHORIZED at order time; a settlement job makes it SETTLED or FAILED; a
//! cancellation makes an authorised payment VOIDED and a settled one REFUNDED.
use std::fmt;

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    #[sea_orm(string_value = "AUTHORIZED")]
    Authorized,
    #[sea_orm(string_value = "SETTLED")]
    Settled,
    #[sea_orm(string_value = "FAILED")]
    Failed,
    #[sea_orm(string_value = "VOIDED")]
    Voided,
    #[sea_orm(string_value = "REFUNDED")]
    Refunded,
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PaymentStatus::Authorized => "AUTHORIZED",
            PaymentStatus::Settled => "SETTLED",
            PaymentStatus::Failed => "FAILED",
            PaymentStatus::Voided => "VOIDED",
            PaymentStatus::Refunded => "REFUNDED",
        })
    }
}

mod gateway;
mod sandbox;
mod settle;

pub use gateway::{GatewayError, PaymentGateway};
pub use sandbox::{SandboxGateway, tokens};
pub use settle::settle_payment;
