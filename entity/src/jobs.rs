//! Job payloads: what crosses from the api (through the outbox and the queue)
//! to the worker. Each has a stable name that includes its version; a breaking
//! change to a payload gets a new name, so rows and queued jobs written by an
//! older build still reach a handler that understands them.
//!
//! Delivery is at least once: a handler may see the same job twice and must
//! make the second run a no-op (keyed by `payment_id` or `dedupe_key`).
//!
//! No payload carries a secret: a password reset email names its reset and
//! the worker mints the token when it sends (`entity::accounts`, "Password
//! reset tokens"). Payloads are still shown and logged only through
//! [`redacted`], which blanks every value under a key of [`SECRET_KEYS`], in
//! case an older build's payload (or a future one) holds one.
use std::fmt;

use crate::accounts::Email;
use crate::ids::{OrderId, OutboxId, PasswordResetId, PaymentId, RefundId};
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

/// Ask the gateway for one admin refund (`entity::payments::refund`).
/// Idempotent by refund: a refund that is no longer PENDING is not asked
/// for again, and the gateway gets the refund's id as its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundPayment {
    pub refund_id: RefundId,
    pub order_id: OrderId,
    pub request_id: Option<String>,
}

impl Job for RefundPayment {
    const NAME: &'static str = "refund_payment.v1";
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
    Welcome {
        name: String,
    },
    OrderConfirmation {
        order_id: OrderId,
    },
    PaymentReceipt {
        order_id: OrderId,
    },
    PaymentFailed {
        order_id: OrderId,
    },
    OrderCancelled {
        order_id: OrderId,
    },
    OrderShipped {
        order_id: OrderId,
    },
    RefundIssued {
        order_id: OrderId,
        refund_id: RefundId,
    },
    /// The worker mints the reset's token when it sends the email.
    #[serde(rename = "password_reset_v2")]
    PasswordReset {
        name: String,
        reset_id: PasswordResetId,
    },
    /// The shape builds before `password_reset_v2` wrote, with the raw token
    /// in the payload. Only read, so rows and queued jobs from such a build
    /// drain: the worker finds their reset by the token's hash, rewrites
    /// the payload as `password_reset_v2` and mints a new token (the old
    /// one stops working). Never written.
    #[serde(rename = "password_reset")]
    LegacyPasswordReset {
        name: String,
        token: LegacyResetToken,
    },
}

/// The raw reset token of a legacy payload. It never leaves the process
/// again: `Debug` and `Serialize` write [`REDACTED`], and only
/// [`LegacyResetToken::expose`] reads it (to find its reset by hash).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct LegacyResetToken(String);

impl LegacyResetToken {
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Serialize for LegacyResetToken {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl fmt::Debug for LegacyResetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
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
            EmailMessage::OrderShipped { .. } => "order_shipped",
            EmailMessage::RefundIssued { .. } => "refund_issued",
            EmailMessage::PasswordReset { .. } | EmailMessage::LegacyPasswordReset { .. } => "password_reset",
        }
    }
}

/// What stands in for a secret wherever a payload is shown or logged.
pub const REDACTED: &str = "[redacted]";

/// Keys whose values are secrets, compared ignoring case, `_` and `-`
/// (so `refresh_token`, `refreshToken` and `Refresh-Token` are one key).
/// The one list: [`redacted`] applies it to every payload an admin sees
/// (`deadJobs.payload`) and every `Debug` of an [`Envelope`].
pub const SECRET_KEYS: [&str; 9] = [
    "token",
    "password",
    "newpassword",
    "secret",
    "accesstoken",
    "refreshtoken",
    "paymenttoken",
    "authorization",
    "apikey",
];

/// `payload` with the value of every [`SECRET_KEYS`] key, at any depth,
/// replaced by [`REDACTED`].
#[must_use]
pub fn redacted(payload: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match payload {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let shown = if is_secret_key(key) {
                        Value::String(REDACTED.to_owned())
                    } else {
                        redacted(value)
                    };
                    (key.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redacted).collect()),
        other => other.clone(),
    }
}

fn is_secret_key(key: &str) -> bool {
    let normal: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_KEYS.contains(&normal.as_str())
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

    #[test]
    fn a_password_reset_email_carries_the_reset_id_and_no_token() {
        let job = SendEmail {
            dedupe_key: "password-reset:00000000-0000-0000-0000-000000000000".into(),
            to: Email::parse("ada@example.com").expect("valid"),
            message: EmailMessage::PasswordReset {
                name: "Ada".into(),
                reset_id: PasswordResetId(Uuid::nil()),
            },
            request_id: None,
        };
        assert_eq!(
            serde_json::to_value(&job).expect("serialize")["message"],
            serde_json::json!({
                "template": "password_reset_v2",
                "name": "Ada",
                "reset_id": "00000000-0000-0000-0000-000000000000"
            })
        );
    }

    #[test]
    fn a_legacy_payload_still_decodes_and_never_shows_its_token() {
        let legacy = serde_json::json!({
            "dedupe_key": "password-reset:x", "to": "ada@example.com", "request_id": null,
            "message": { "template": "password_reset", "name": "Ada", "token": "s3cret-raw-token" },
        });
        let job: SendEmail = serde_json::from_value(legacy).expect("legacy payloads decode");
        let EmailMessage::LegacyPasswordReset { token, .. } = &job.message else {
            panic!("decoded as {:?}", job.message);
        };
        assert_eq!(token.expose(), "s3cret-raw-token");
        assert_eq!(job.message.template(), "password_reset");
        assert!(!format!("{job:?}").contains("s3cret"));
        assert!(!serde_json::to_string(&job).expect("serialize").contains("s3cret"));
    }

    #[test]
    fn envelopes_queued_without_a_traceparent_still_decode_and_none_is_not_written() {
        let id = "00000000-0000-0000-0000-000000000000";
        let older = serde_json::json!({
            "outbox_id": id, "job_name": "send_email.v1", "attempt": 1, "payload": {},
        });
        let envelope: Envelope = serde_json::from_value(older.clone()).expect("an older build's envelope");
        assert_eq!(envelope.traceparent, None);
        assert_eq!(serde_json::to_value(&envelope).expect("serialize"), older);

        let traced = Envelope {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            ..envelope
        };
        let json = serde_json::to_value(&traced).expect("serialize");
        assert_eq!(
            json["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(
            serde_json::from_value::<Envelope>(json).expect("deserialize"),
            traced
        );
    }

    #[test]
    fn secrets_are_redacted_at_any_depth_under_any_spelling_of_their_key() {
        let payload = serde_json::json!({
            "dedupe_key": "password-reset:1",
            "message": { "template": "password_reset", "name": "Ada", "token": "abc" },
            "list": [{ "refreshToken": "r" }, { "NEW_PASSWORD": "p" }, { "payment-token": "t" }],
        });
        assert_eq!(
            redacted(&payload),
            serde_json::json!({
                "dedupe_key": "password-reset:1",
                "message": { "template": "password_reset", "name": "Ada", "token": REDACTED },
                "list": [{ "refreshToken": REDACTED }, { "NEW_PASSWORD": REDACTED }, { "payment-token": REDACTED }],
            })
        );
    }
}

/// What travels on a queue: one attempt of one outbox row's job. The payload
/// stays JSON here; the worker decodes it by `job_name`. `Debug` shows the
/// payload [`redacted`].
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The outbox row this attempt came from (a retry is a new row).
    pub outbox_id: OutboxId,
    pub job_name: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub payload: serde_json::Value,
    /// The W3C trace context of the row (see [`crate::trace`]); the job's
    /// span continues it. Absent in envelopes queued by older builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("outbox_id", &self.outbox_id)
            .field("job_name", &self.job_name)
            .field("attempt", &self.attempt)
            .field("payload", &redacted(&self.payload))
            .field("traceparent", &self.traceparent)
            .finish()
    }
}

/// The queues jobs run on; each worker process may consume one or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QueueName {
    Emails,
    Settlements,
}

impl QueueName {
    pub const ALL: [QueueName; 2] = [QueueName::Emails, QueueName::Settlements];

    /// The jobs of the settlements queue; every other job is an email's.
    pub const SETTLEMENT_JOBS: [&'static str; 3] =
        [SettlePayment::NAME, ReleasePayment::NAME, RefundPayment::NAME];

    /// The queue a job of this name runs on.
    #[must_use]
    pub fn for_job(job_name: &str) -> Self {
        if Self::SETTLEMENT_JOBS.contains(&job_name) {
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
