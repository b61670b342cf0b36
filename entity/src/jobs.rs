//! Job payloads: what crosses from the api (through the outbox and the queue)
//! to the worker. Each has a stable name that includes its version; a breaking
//! change to a payload gets a new name, so rows and queued jobs written by an
//! older build still reach a handler that understands them.
//!
//! Delivery is at least once: a handler may see the same job twice and must
//! make the second run a no-op (keyed by `payment_id` or `dedupe_key`).
use crate::accounts::Email;
use crate::ids::{OrderId, OutboxId, PaymentId};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
#[cfg(test)]
use uuid::Uuid;

/// A payload the worker knows how to run.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stable, versioned name stored in the outbox and used as the queue.
    const NAME: &'static str;
}

/// Capture the authorised payment of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlePayment {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    /// The id of the HTTP request that caused the job, for following it in logs.
    pub request_id: Option<String>,
}

impl Job for SettlePayment {
    const NAME: &'static str = "settle_payment.v1";
}

/// Give back the money of a cancelled order: void the payment if it is only
/// authorised, refund it if it was captured. Idempotent by payment: a
/// released payment is not released again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasePayment {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub request_id: Option<String>,
}

impl Job for ReleasePayment {
    const NAME: &'static str = "release_payment.v1";
}

/// Send one email, at most once per `dedupe_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendEmail {
    /// e.g. `order-confirmation:<order id>`; one delivery row per key.
    pub dedupe_key: String,
    pub to: Email,
    pub message: EmailMessage,
    pub request_id: Option<String>,
}

impl Job for SendEmail {
    const NAME: &'static str = "send_email.v1";
}

/// Which email, with what it needs to render; the worker looks the rest up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum EmailMessage {
    Welcome { name: String },
    OrderConfirmation { order_id: OrderId },
    PaymentReceipt { order_id: OrderId },
    PaymentFailed { order_id: OrderId },
    OrderCancelled { order_id: OrderId },
    PasswordReset { name: String, token: String },
}

impl EmailMessage {
    /// The template name, also stored on the delivery row.
    #[must_use]
    pub fn template(&self) -> &'static str {
        match self {
            EmailMessage::Welcome { .. } => "welcome",
            EmailMessage::OrderConfirmation { .. } => "order_confirmation",
            EmailMessage::PaymentReceipt { .. } => "payment_receipt",
            EmailMessage::PaymentFailed { .. } => "payment_failed",
            EmailMessage::OrderCancelled { .. } => "order_cancelled",
            EmailMessage::PasswordReset { .. } => "password_reset",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_a_stable_wire_format() {
        let id = OrderId(Uuid::nil());
        let job = SendEmail {
            dedupe_key: format!("order-confirmation:{id}"),
            to: Email::parse("ada@example.com").expect("valid"),
            message: EmailMessage::OrderConfirmation { order_id: id },
            request_id: Some("req-1".into()),
        };
        let json = serde_json::to_value(&job).expect("serialize");
        assert_eq!(
            json,
            serde_json::json!({
                "dedupe_key": "order-confirmation:00000000-0000-0000-0000-000000000000",
                "to": "ada@example.com",
                "message": {"template": "order_confirmation", "order_id": "00000000-0000-0000-0000-000000000000"},
                "request_id": "req-1"
            })
        );
        assert_eq!(
            serde_json::from_value::<SendEmail>(json).expect("deserialize"),
            job
        );
        assert_eq!(SendEmail::NAME, "send_email.v1");
        assert_eq!(SettlePayment::NAME, "settle_payment.v1");
        assert_eq!(ReleasePayment::NAME, "release_payment.v1");
    }
}

/// What travels on a queue: one attempt of one outbox row's job. The payload
/// stays JSON here; the worker decodes it by `job_name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The outbox row this attempt came from (a retry is a new row).
    pub outbox_id: OutboxId,
    pub job_name: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub payload: serde_json::Value,
}

/// The queues jobs run on; each worker process may consume one or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QueueName {
    Emails,
    Settlements,
}

impl QueueName {
    pub const ALL: [QueueName; 2] = [QueueName::Emails, QueueName::Settlements];

    /// The queue a job of this name runs on.
    #[must_use]
    pub fn for_job(job_name: &str) -> Self {
        if job_name == SettlePayment::NAME || job_name == ReleasePayment::NAME {
            QueueName::Settlements
        } else {
            QueueName::Emails
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            QueueName::Emails => "emails",
            QueueName::Settlements => "settlements",
        }
    }
}

/// How one attempt of a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Finished (including "nothing to do": a redelivered job is a no-op).
    Done,
    /// A temporary failure: try again after a backoff, until the limit.
    Retry(String),
    /// A permanent failure: no retry; the job is kept as dead.
    Fail(String),
    /// Not this attempt's turn (another worker holds the work): run the same
    /// attempt again after the wait, without using up an attempt.
    Later {
        after: std::time::Duration,
        reason: String,
    },
}
