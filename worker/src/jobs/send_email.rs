//! `send_email.v1`: render and send one email, at most once per dedupe key
//! (rules: `entity::notifications`). A password reset email gets its token
//! here, minted after the delivery is claimed (`entity::accounts`, reset
//! module docs): the token is in the email and nowhere else.
use std::time::Duration;

use entity::DomainError;
use entity::db::retry::retrying;
use entity::jobs::{EmailMessage, Envelope, JobOutcome, SendEmail};
use entity::money::Money;
use entity::notifications::{Claim, claim_delivery, delivery_failed, delivery_sent};
use sea_orm::EntityTrait;

use super::{JobContext, retry_on_error};
use crate::notifications::{
    Breakdown, EmailContent, LineSummary, MailError, OrderSummary, RefundSummary, render,
};
use entity::addresses::Address;
use entity::pricing::TaxMode;

/// How long a sender holds a delivery; longer than any SMTP exchange.
const LEASE: Duration = Duration::from_secs(120);

/// Takes `envelope` mutably: a legacy payload is rewritten without its
/// token (see [`drain_legacy`]), so the retry or dead row made from the
/// envelope afterwards holds no secret either.
pub async fn run(ctx: &JobContext, envelope: &mut Envelope, job: SendEmail) -> JobOutcome {
    // The job span's trace (which continues the row's), else the row's.
    let trace_id = entity::trace::current()
        .or_else(|| envelope.traceparent.clone())
        .and_then(|traceparent| entity::trace::trace_id(&traceparent));
    match drain_legacy(ctx, envelope, job).await {
        Ok(job) => retry_on_error(send(ctx, &job, trace_id).await),
        Err(outcome) => outcome,
    }
}

/// A job from a build that put the raw reset token in the payload becomes
/// a `PasswordReset` by id (its reset found by the token's hash), in the
/// envelope and in its outbox row; the token it carried is never sent and
/// stops working when the new one is minted. Other jobs pass unchanged.
async fn drain_legacy(
    ctx: &JobContext,
    envelope: &mut Envelope,
    mut job: SendEmail,
) -> Result<SendEmail, JobOutcome> {
    let EmailMessage::LegacyPasswordReset { name, token } = &job.message else {
        return Ok(job);
    };
    // A database error leaves the legacy payload for the retry: dropping it
    // would lose the email.
    let found = entity::accounts::legacy_reset_id(&ctx.db, token.expose())
        .await
        .map_err(|err| retry_on_error(Err(err)))?;
    let result = if let Some(reset_id) = found {
        job.message = EmailMessage::PasswordReset {
            name: name.clone(),
            reset_id,
        };
        envelope.payload =
            serde_json::to_value(&job).unwrap_or_else(|_| entity::jobs::redacted(&envelope.payload));
        Ok(job)
    } else {
        envelope.payload = entity::jobs::redacted(&envelope.payload);
        Err(JobOutcome::Fail(RESET_UNUSABLE.into()))
    };
    entity::outbox::replace_payload(&ctx.db, envelope.outbox_id, envelope.payload.clone())
        .await
        .map_err(|err| retry_on_error(Err(err)))?;
    result
}

const RESET_UNUSABLE: &str = "the password reset was used or expired before its email was sent";

async fn send(
    ctx: &JobContext,
    job: &SendEmail,
    trace_id: Option<String>,
) -> Result<JobOutcome, DomainError> {
    match claim_delivery(&ctx.db, job, LEASE).await? {
        Claim::AlreadySent => return Ok(JobOutcome::Done),
        Claim::Busy { until } => {
            // Not a failure: wait for the other sender's lease (it may have
            // crashed mid-send) without using up an attempt.
            let after = (until - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(1);
            return Ok(JobOutcome::Later {
                after,
                reason: "another worker holds this email".into(),
            });
        }
        Claim::Send(_) => {}
    }
    // From here on this worker holds the claim: a dead connection must not
    // turn into a retry that finds its own claim busy for the whole LEASE,
    // so the statements up to the send run again on a fresh connection.
    let Some(content) = retrying("email content", || content(ctx, &job.message)).await? else {
        let why = match job.message {
            EmailMessage::PasswordReset { .. } | EmailMessage::LegacyPasswordReset { .. } => RESET_UNUSABLE,
            _ => "the order of this email no longer exists",
        };
        delivery_failed(&ctx.db, &job.dedupe_key, why, true).await?;
        return Ok(JobOutcome::Fail(why.into()));
    };
    let email = render(job.to.as_str(), &content, &ctx.links).traced(trace_id, job.request_id.clone());
    match ctx.mailer.send(&email).await {
        Ok(()) => {
            retrying("email sent", || delivery_sent(&ctx.db, &job.dedupe_key)).await?;
            tracing::info!(template = job.message.template(), dedupe_key = %job.dedupe_key, "email sent");
            Ok(JobOutcome::Done)
        }
        Err(err @ MailError::Unavailable(refused)) => {
            // Not sent, not tried: give the claim back and come back later,
            // without using up an attempt.
            delivery_failed(&ctx.db, &job.dedupe_key, &err.to_string(), false).await?;
            Ok(JobOutcome::Later {
                after: refused.retry_after,
                reason: err.to_string(),
            })
        }
        Err(err) => {
            let message = err.to_string();
            delivery_failed(&ctx.db, &job.dedupe_key, &message, err.is_permanent()).await?;
            Ok(if err.is_permanent() {
                JobOutcome::Fail(message)
            } else {
                JobOutcome::Retry(message)
            })
        }
    }
}

/// Looks up what the email shows (minting a reset's token); `None` when its
/// order is gone or its reset can no longer be used.
async fn content(ctx: &JobContext, message: &EmailMessage) -> Result<Option<EmailContent>, DomainError> {
    let order_email = |order_id, wrap: fn(OrderSummary) -> EmailContent| async move {
        Ok::<_, DomainError>(summary(ctx, order_id).await?.map(wrap))
    };
    match message {
        EmailMessage::Welcome { name } => Ok(Some(EmailContent::Welcome { name: name.clone() })),
        EmailMessage::PasswordReset { name, reset_id } => {
            let token = entity::accounts::mint_reset_token(&ctx.db, *reset_id).await?;
            Ok(token.map(|token| EmailContent::PasswordReset {
                name: name.clone(),
                token,
            }))
        }
        // `run` turned these into `PasswordReset` already.
        EmailMessage::LegacyPasswordReset { .. } => Ok(None),
        EmailMessage::OrderConfirmation { order_id } => {
            order_email(*order_id, EmailContent::OrderConfirmation).await
        }
        EmailMessage::PaymentReceipt { order_id } => {
            order_email(*order_id, EmailContent::PaymentReceipt).await
        }
        EmailMessage::PaymentFailed { order_id } => order_email(*order_id, EmailContent::PaymentFailed).await,
        EmailMessage::OrderCancelled { order_id } => {
            order_email(*order_id, EmailContent::OrderCancelled).await
        }
        EmailMessage::OrderShipped { order_id } => order_email(*order_id, EmailContent::OrderShipped).await,
        EmailMessage::RefundIssued { order_id, refund_id } => {
            let Some(refund) = entity::tables::refunds::Entity::find_by_id(*refund_id)
                .one(&ctx.db)
                .await?
            else {
                return Ok(None);
            };
            let amount = Money::from_parts(refund.amount_minor, &refund.currency)?;
            Ok(summary(ctx, *order_id).await?.map(|order| {
                EmailContent::RefundIssued(RefundSummary {
                    order,
                    amount,
                    reason: refund.reason,
                })
            }))
        }
    }
}

async fn summary(
    ctx: &JobContext,
    order_id: entity::ids::OrderId,
) -> Result<Option<OrderSummary>, DomainError> {
    let Some(details) = entity::orders::order_details(&ctx.db, order_id).await? else {
        return Ok(None);
    };
    let mut lines = Vec::with_capacity(details.lines.len());
    for line in &details.lines {
        let unit_price = Money::from_parts(line.unit_price_minor, &line.currency)?;
        lines.push(LineSummary {
            // "Black tee — M"; a product sold in one variant shows its name.
            name: if line.variant_title == entity::catalog::variants::DEFAULT_TITLE {
                line.product_name.clone()
            } else {
                format!("{} — {}", line.product_name, line.variant_title)
            },
            quantity: u32::try_from(line.quantity).unwrap_or(0),
            unit_price,
            subtotal: unit_price.checked_mul(i64::from(line.quantity))?,
        });
    }
    let order = &details.order;
    let money = |minor| Money::from_parts(minor, &order.currency);
    let ship_to = Address::from_snapshot(order.shipping_address.as_deref());
    // Only checkout orders have a breakdown (and an address) to show.
    let breakdown = match ship_to {
        Some(_) => Some(Breakdown {
            subtotal: money(order.subtotal_minor)?,
            discount: money(order.discount_minor)?,
            discount_code: order.discount_code.clone(),
            shipping: money(order.shipping_minor)?,
            shipping_method: order.shipping_method_name.clone(),
            tax: money(order.tax_minor)?,
            tax_included: order.tax_mode == TaxMode::Inclusive,
        }),
        None => None,
    };
    Ok(Some(OrderSummary {
        order_id,
        customer_name: details.customer.name,
        lines,
        breakdown,
        total: money(order.total_minor)?,
        status: order.status,
        ship_to: ship_to.map(|address| address.lines()),
    }))
}
