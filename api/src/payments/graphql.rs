use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use entity::catalog::Quantity;
use entity::ids::OrderId;
use entity::payments::refund::{self, RefundRequest, RefundScope};
use entity::tables::refunds::RefundStatus;
use entity::tables::{payments, refunds};

use super::RefundsLoader;
use crate::auth::require_admin;
use crate::errors::{GqlResultExt, client_error, code};
use crate::money::{MoneyView, money};
use crate::{errors, ids, write_txn};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::payments::PaymentStatus")]
pub enum PaymentStatus {
    Authorized,
    Settled,
    Failed,
    Voided,
    Refunded,
}

/// The payment of an order: authorised at order time, settled by a job.
pub struct Payment(pub payments::Model);

#[Object]
impl Payment {
    async fn id(&self) -> ID {
        ids::to_gql(self.0.id)
    }
    async fn status(&self) -> PaymentStatus {
        self.0.status.into()
    }
    async fn amount(&self) -> MoneyView {
        money(self.0.amount_minor, &self.0.currency)
    }
    /// Capture attempts so far.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// Why the last capture attempt failed, if it did.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// What was taken from the customer: the amount once captured, else zero.
    async fn captured_amount(&self) -> MoneyView {
        let captured = matches!(
            self.0.status,
            entity::payments::PaymentStatus::Settled | entity::payments::PaymentStatus::Refunded
        );
        money(if captured { self.0.amount_minor } else { 0 }, &self.0.currency)
    }
    /// What refunds gave back or are giving back (PENDING and SUCCEEDED).
    async fn refunded_amount(&self, ctx: &Context<'_>) -> async_graphql::Result<MoneyView> {
        let refunded = self
            .refund_rows(ctx)
            .await?
            .iter()
            .filter(|r| r.status != RefundStatus::Failed)
            .map(|r| r.amount_minor)
            .sum();
        Ok(money(refunded, &self.0.currency))
    }
    /// The admin's refunds of this payment, oldest first.
    async fn refunds(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Refund>> {
        Ok(self
            .refund_rows(ctx)
            .await?
            .into_iter()
            .map(Refund::from)
            .collect())
    }
}

impl Payment {
    async fn refund_rows(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<refunds::Model>> {
        ctx.data::<DataLoader<RefundsLoader>>()?
            .load_one(self.0.id)
            .await
            .map_err(|e| errors::loader(ctx, &e))
            .map(Option::unwrap_or_default)
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::tables::refunds::RefundStatus")]
pub enum RefundStatusView {
    /// Written; the gateway is being asked by a job.
    Pending,
    Succeeded,
    /// The gateway refused; the amount can be refunded again.
    Failed,
}

/// All or part of a captured payment given back by an admin.
#[derive(SimpleObject)]
pub struct Refund {
    id: ID,
    amount: MoneyView,
    reason: String,
    restocked: bool,
    status: RefundStatusView,
    /// Why the gateway refused, when it did.
    last_error: Option<String>,
}

impl From<refunds::Model> for Refund {
    fn from(row: refunds::Model) -> Self {
        Self {
            id: ids::to_gql(row.id),
            amount: money(row.amount_minor, &row.currency),
            reason: row.reason,
            restocked: row.restock,
            status: row.status.into(),
            last_error: row.last_error,
        }
    }
}

#[derive(InputObject)]
pub struct RefundLineInput {
    line_id: ID,
    quantity: i32,
}

/// Either `lines` (units at the price they were sold for) or `amountMinor`.
#[derive(InputObject)]
pub struct RefundInput {
    lines: Option<Vec<RefundLineInput>>,
    amount_minor: Option<i64>,
    /// Shown to the customer in the refund email.
    reason: String,
    /// Put the refunded lines' units back into stock.
    #[graphql(default = false)]
    restock: bool,
}

#[derive(Default)]
pub struct PaymentsMutation;

#[Object]
impl PaymentsMutation {
    /// Admin: refunds part or all of a paid order's captured payment, by
    /// lines or by amount. The refund is PENDING until a job hears from the
    /// gateway; the customer is emailed when it succeeds. Never more than
    /// was captured, never a unit twice, however many refunds race.
    async fn refund_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: RefundInput,
    ) -> async_graphql::Result<Refund> {
        require_admin(ctx)?;
        let order_id: OrderId = ids::parse(&id, "id")?;
        let scope = match (input.lines, input.amount_minor) {
            (Some(lines), None) => RefundScope::Lines(
                lines
                    .iter()
                    .map(|line| {
                        Ok((
                            ids::parse(&line.line_id, "lineId")?,
                            Quantity::parse(line.quantity).or_gql(ctx)?,
                        ))
                    })
                    .collect::<async_graphql::Result<_>>()?,
            ),
            (None, Some(amount)) => RefundScope::Amount(amount),
            _ => {
                return Err(client_error(
                    code::BAD_USER_INPUT,
                    "give either `lines` or `amountMinor`",
                ));
            }
        };
        let request = RefundRequest {
            order_id,
            scope,
            reason: input.reason,
            restock: input.restock,
            request_id: Some(errors::request_id(ctx).to_owned()),
        };
        let row = write_txn(ctx, |txn| {
            let request = request.clone();
            Box::pin(async move { refund::request_refund(txn, &request).await })
        })
        .await?;
        crate::jobs_written(ctx);
        crate::order_changed(ctx, order_id).await;
        Ok(row.into())
    }
}
