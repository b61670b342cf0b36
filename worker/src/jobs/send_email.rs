//! `send_email.v1`: render and send one email, at most once per dedupe key
//! (rules: `entity::notifications`).
use std::time::Duration;

use entity::DomainError;
use entity::jobs::{EmailMessage, JobOutcome, SendEmail};
use entity::money::Money;
use entity::notifications::{Claim, claim_delivery, delivery_failed, delivery_sent};

use super::{JobContext, retry_on_error};
use crate::notifications::{EmailContent, LineSummary, OrderSummary, render};

/// How long a sender holds a delivery; longer than any SMTP exchange.
const LEASE: Duration = Duration::from_secs(120);

pub async fn run(ctx: &JobContext, job: &SendEmail) -> JobOutcome {
    retry_on_error(send(ctx, job).await)
}

async fn send(ctx: &JobContext, job: &SendEmail) -> Result<JobOutcome, DomainError> {
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
    let Some(content) = content(ctx, &job.message).await? else {
        delivery_failed(&ctx.db, &job.dedupe_key, "the order no longer exists", true).await?;
        return Ok(JobOutcome::Fail(
            "the order of this email no longer exists".into(),
        ));
    };
    let email = render(job.to.as_str(), &content, &ctx.links);
    match ctx.mailer.send(&email).await {
        Ok(()) => {
            delivery_sent(&ctx.db, &job.dedupe_key).await?;
            tracing::info!(template = job.message.template(), dedupe_key = %job.dedupe_key, "email sent");
            Ok(JobOutcome::Done)
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

/// Looks up what the email shows; `None` when its order is gone.
async fn content(ctx: &JobContext, message: &EmailMessage) -> Result<Option<EmailContent>, DomainError> {
    let order_email = |order_id, wrap: fn(OrderSummary) -> EmailContent| async move {
        Ok::<_, DomainError>(summary(ctx, order_id).await?.map(wrap))
    };
    match message {
        EmailMessage::Welcome { name } => Ok(Some(EmailContent::Welcome { name: name.clone() })),
        EmailMessage::PasswordReset { name, token } => Ok(Some(EmailContent::PasswordReset {
            name: name.clone(),
            token: token.clone(),
        })),
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
            name: line.product_name.clone(),
            quantity: u32::try_from(line.quantity).unwrap_or(0),
            unit_price,
            subtotal: unit_price.checked_mul(i64::from(line.quantity))?,
        });
    }
    Ok(Some(OrderSummary {
        order_id,
        customer_name: details.customer.name,
        lines,
        total: Money::from_parts(details.order.total_minor, &details.order.currency)?,
        status: details.order.status,
    }))
}
