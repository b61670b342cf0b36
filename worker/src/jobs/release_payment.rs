//! `release_payment.v1`: void or refund a cancelled order's payment (rule:
//! `entity::payments::release_payment`).
use entity::jobs::{JobOutcome, ReleasePayment};
use tracing::Instrument as _;

use super::{JobContext, retry_on_error};

pub async fn run(ctx: &JobContext, job: &ReleasePayment) -> JobOutcome {
    let span = tracing::info_span!("release_payment", payment_id = %job.payment_id, request_id = job.request_id.as_deref().unwrap_or("-"));
    retry_on_error(
        entity::payments::release_payment(&ctx.db, ctx.gateway.as_ref(), job)
            .instrument(span)
            .await,
    )
}
