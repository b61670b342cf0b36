//! `settle_payment.v1`: capture an order's payment (rule: `entity::payments::settle_payment`).
use entity::jobs::{JobOutcome, SettlePayment};
use tracing::Instrument as _;

use super::{JobContext, retry_on_error};

pub async fn run(ctx: &JobContext, job: &SettlePayment) -> JobOutcome {
    // `instrument`, not `span.enter()`: a guard held across the `.await`
    // would leave the span entered on the thread while the capture waits,
    // tagging other jobs' log lines with this payment.
    let span = tracing::info_span!("settle_payment", payment_id = %job.payment_id, request_id = job.request_id.as_deref().unwrap_or("-"));
    retry_on_error(
        entity::payments::settle_payment(&ctx.db, ctx.gateway.as_ref(), job)
            .instrument(span)
            .await,
    )
}
