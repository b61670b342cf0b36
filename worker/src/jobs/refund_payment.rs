//! `refund_payment.v1`: ask the gateway for an admin's refund (rule:
//! `entity::payments::refund::complete_refund`).
use entity::jobs::{JobOutcome, RefundPayment};
use tracing::Instrument as _;

use super::{JobContext, retry_on_error};

pub async fn run(ctx: &JobContext, job: &RefundPayment) -> JobOutcome {
    let span = tracing::info_span!("refund_payment", refund_id = %job.refund_id, request_id = job.request_id.as_deref().unwrap_or("-"));
    let outcome = entity::payments::refund::complete_refund(&ctx.db, ctx.gateway.as_ref(), job)
        .instrument(span)
        .await;
    if matches!(outcome, Ok(JobOutcome::Done)) {
        // The refund email is in the outbox.
        ctx.kicker.kick();
    }
    retry_on_error(outcome)
}
