//! Partial refunds: an admin gives back part (or all) of an order's captured
//! payment, by lines or by amount; a job asks the gateway.
//!
//! [`request_refund`] runs in one write transaction: it first locks the
//! payment's row (a conditional `UPDATE … WHERE status = 'SETTLED'`, which
//! also refuses a payment that was never captured or is already fully
//! refunded), then counts what earlier refunds that did not fail took —
//! per payment and per order line — so two racing refunds can never give
//! back more than was captured or refund a unit twice (the second waits for
//! the lock and then sees the first). It writes the refund PENDING, its
//! lines, the stock movements when asked to restock, and the job.
//!
//! [`complete_refund`] is that job's rule: the gateway is called outside any
//! transaction with the refund's id as the idempotency key, and the outcome
//! is a compare-and-set from PENDING, so a redelivered job does nothing.
//! A refund the gateway refuses for good is FAILED, and what it had taken
//! counts as refundable again (units already put back in stock stay there:
//! restocking records the goods that came back, not the money).
use std::collections::HashMap;

use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, DatabaseConnection, PaginatorTrait, QueryOrder, QuerySelect};

use super::{GatewayError, PaymentGateway, PaymentStatus};
use crate::catalog::{Quantity, return_stock};
use crate::db::begin_write;
use crate::error::DomainError;
use crate::ids::{OrderId, OrderLineId, PaymentId, RefundId};
use crate::jobs::{EmailMessage, JobOutcome, RefundPayment};
use crate::money::{Currency, Money};
use crate::orders::OrderStatus;
use crate::tables::refunds::RefundStatus;
use crate::tables::{order_lines, orders, payments, refund_lines, refunds};
use crate::text::one_line;

/// What to refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundScope {
    /// Units of order lines, at the unit price they were sold for.
    Lines(Vec<(OrderLineId, Quantity)>),
    /// An amount (a goodwill refund, shipping), in minor units of the order's currency.
    Amount(i64),
}

/// An admin's refund request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub order_id: OrderId,
    pub scope: RefundScope,
    /// Shown to the customer in the refund email: 1-500 characters.
    pub reason: String,
    /// Put the refunded lines' units back into stock (lines only).
    pub restock: bool,
    pub request_id: Option<String>,
}

/// Writes a PENDING refund and its job (see the module docs). Call inside
/// a write transaction.
///
/// # Errors
/// [`DomainError::NotFound`] for an unknown order; [`DomainError::InvalidInput`]
/// when the order's payment is not captured (`id`), a line is not the
/// order's or has fewer units left to refund (`lines`), or the amount is
/// not positive or more than is left (`amountMinor`).
pub async fn request_refund<C: ConnectionTrait>(
    conn: &C,
    request: &RefundRequest,
) -> Result<refunds::Model, DomainError> {
    let reason = one_line("reason", &request.reason, 500)?;
    let order = orders::Entity::find_by_id(request.order_id)
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound { entity: "order" })?;
    if !matches!(order.status, OrderStatus::Paid | OrderStatus::Fulfilled) {
        return Err(DomainError::invalid(
            "id",
            format!("a {} order has no captured payment to refund", order.status),
        ));
    }
    // The payment's row lock: every refund of this payment goes one at a time from here.
    let payment = payments::Entity::update_many()
        .col_expr(payments::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(payments::Column::OrderId.eq(order.id))
        .filter(payments::Column::Status.eq(PaymentStatus::Settled.to_string()))
        .exec_with_returning(conn)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            DomainError::invalid("id", "the order's payment is not captured, or already refunded")
        })?;
    let currency = Currency::parse(&payment.currency)?;
    let lines = order_lines::Entity::find()
        .filter(order_lines::Column::OrderId.eq(order.id))
        .all(conn)
        .await?;
    let (amount, refunded_lines) = match &request.scope {
        RefundScope::Amount(minor) if *minor > 0 => (Money::new(*minor, currency), Vec::new()),
        RefundScope::Amount(_) => return Err(DomainError::invalid("amountMinor", "must be positive")),
        RefundScope::Lines(wanted) => priced_lines(conn, &lines, wanted, currency).await?,
    };
    let left = payment.amount_minor - taken(conn, &payment).await?;
    if amount.amount_minor > left {
        return Err(DomainError::invalid(
            "amountMinor",
            format!("only {} is left to refund", Money::new(left, currency)),
        ));
    }
    let restock = request.restock && !refunded_lines.is_empty();
    let refund = refunds::ActiveModel {
        id: Set(RefundId::new()),
        order_id: Set(order.id),
        payment_id: Set(payment.id),
        amount_minor: Set(amount.amount_minor),
        currency: Set(currency.code().to_owned()),
        reason: Set(reason),
        restock: Set(restock),
        status: Set(RefundStatus::Pending),
        last_error: Set(None),
        created_at: Set(Utc::now()),
        completed_at: Set(None),
    }
    .insert(conn)
    .await?;
    for (line, quantity) in &refunded_lines {
        refund_lines::ActiveModel {
            refund_id: Set(refund.id),
            order_line_id: Set(line.id),
            quantity: Set(quantity.get()),
        }
        .insert(conn)
        .await?;
        if restock {
            return_stock(conn, line.variant_id, *quantity, order.id).await?;
        }
    }
    crate::outbox::enqueue(
        conn,
        &RefundPayment {
            refund_id: refund.id,
            order_id: order.id,
            request_id: request.request_id.clone(),
        },
    )
    .await?;
    Ok(refund)
}

/// The order's lines asked for, each checked against the units earlier
/// refunds (not failed) took, and their price.
async fn priced_lines<C: ConnectionTrait>(
    conn: &C,
    lines: &[order_lines::Model],
    wanted: &[(OrderLineId, Quantity)],
    currency: Currency,
) -> Result<(Money, Vec<(order_lines::Model, Quantity)>), DomainError> {
    if wanted.is_empty() {
        return Err(DomainError::invalid("lines", "name at least one line"));
    }
    let refunded = refunded_units(conn, lines.iter().map(|l| l.id).collect()).await?;
    let mut picked = Vec::new();
    let mut amount = Money::zero(currency);
    for (line_id, quantity) in wanted {
        let Some(line) = lines.iter().find(|l| l.id == *line_id) else {
            return Err(DomainError::invalid(
                "lines",
                format!("line {line_id} is not this order's"),
            ));
        };
        if picked
            .iter()
            .any(|(l, _): &(order_lines::Model, Quantity)| l.id == line.id)
        {
            return Err(DomainError::invalid(
                "lines",
                format!("line {line_id} is named twice"),
            ));
        }
        let left = line.quantity - refunded.get(&line.id).copied().unwrap_or(0);
        if quantity.get() > left {
            return Err(DomainError::invalid(
                "lines",
                format!("line {line_id} has {left} units left to refund"),
            ));
        }
        amount = amount.checked_add(
            Money::new(line.unit_price_minor, currency).checked_mul(i64::from(quantity.get()))?,
        )?;
        picked.push((line.clone(), *quantity));
    }
    Ok((amount, picked))
}

/// Units of each line that refunds which did not fail gave back.
async fn refunded_units<C: ConnectionTrait>(
    conn: &C,
    line_ids: Vec<OrderLineId>,
) -> Result<HashMap<OrderLineId, i32>, DomainError> {
    let rows: Vec<(OrderLineId, i32)> = refund_lines::Entity::find()
        .select_only()
        .column(refund_lines::Column::OrderLineId)
        .column(refund_lines::Column::Quantity)
        .inner_join(refunds::Entity)
        .filter(refund_lines::Column::OrderLineId.is_in(line_ids))
        .filter(refunds::Column::Status.ne(RefundStatus::Failed))
        .into_tuple()
        .all(conn)
        .await?;
    let mut units = HashMap::new();
    for (line, quantity) in rows {
        *units.entry(line).or_insert(0) += quantity;
    }
    Ok(units)
}

/// Minor units that refunds of `payment` which did not fail took.
async fn taken<C: ConnectionTrait>(conn: &C, payment: &payments::Model) -> Result<i64, DomainError> {
    let amounts: Vec<i64> = refunds::Entity::find()
        .select_only()
        .column(refunds::Column::AmountMinor)
        .filter(refunds::Column::PaymentId.eq(payment.id))
        .filter(refunds::Column::Status.ne(RefundStatus::Failed))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(amounts.iter().sum())
}

/// The refunds of each payment, oldest first (one statement for a page).
///
/// # Errors
/// [`DomainError::Database`].
pub async fn refunds_by_payment_ids<C: ConnectionTrait>(
    conn: &C,
    payment_ids: &[PaymentId],
) -> Result<HashMap<PaymentId, Vec<refunds::Model>>, DomainError> {
    let rows = refunds::Entity::find()
        .filter(refunds::Column::PaymentId.is_in(payment_ids.iter().copied()))
        .order_by_asc(refunds::Column::Id)
        .all(conn)
        .await?;
    let mut by_payment: HashMap<PaymentId, Vec<refunds::Model>> = HashMap::new();
    for row in rows {
        by_payment.entry(row.payment_id).or_default().push(row);
    }
    Ok(by_payment)
}

/// Asks the gateway for `job`'s refund and records the outcome (see the
/// module docs): SUCCEEDED with the refund email (and the payment REFUNDED
/// once nothing is left and nothing else is pending), or FAILED.
///
/// # Errors
/// [`DomainError`] only when the database fails; gateway failures are
/// outcomes: a refusal is `Fail`, a transient error or a timeout `Retry`,
/// an open circuit breaker `Later`.
pub async fn complete_refund(
    db: &DatabaseConnection,
    gateway: &dyn PaymentGateway,
    job: &RefundPayment,
) -> Result<JobOutcome, DomainError> {
    let Some(refund) = refunds::Entity::find_by_id(job.refund_id).one(db).await? else {
        return Ok(JobOutcome::Fail(format!(
            "refund {} does not exist",
            job.refund_id
        )));
    };
    if refund.status != RefundStatus::Pending {
        return Ok(JobOutcome::Done);
    }
    let payment = payments::Entity::find_by_id(refund.payment_id)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound { entity: "payment" })?;
    let Some(reference) = payment.authorization_ref.as_deref() else {
        return Ok(JobOutcome::Fail(format!(
            "payment {} has no gateway reference",
            payment.id
        )));
    };
    let amount = Money::from_parts(refund.amount_minor, &refund.currency)?;
    match gateway.refund(reference, amount, &refund.id.to_string()).await {
        Ok(()) => {
            succeed(db, &refund, &payment, job).await?;
            Ok(JobOutcome::Done)
        }
        Err(err @ GatewayError::Unavailable { retry_after }) => Ok(JobOutcome::Later {
            after: retry_after,
            reason: err.to_string(),
        }),
        Err(err) if err.is_retryable() => Ok(JobOutcome::Retry(err.to_string())),
        Err(err) => {
            let message = format!("refund refused: {err}");
            finish(db, refund.id, RefundStatus::Failed, Some(&message)).await?;
            Ok(JobOutcome::Fail(message))
        }
    }
}

async fn succeed(
    db: &DatabaseConnection,
    refund: &refunds::Model,
    payment: &payments::Model,
    job: &RefundPayment,
) -> Result<(), DomainError> {
    let txn = begin_write(db).await?;
    if !finish(&txn, refund.id, RefundStatus::Succeeded, None).await? {
        return Ok(());
    }
    let pending = refunds::Entity::find()
        .filter(refunds::Column::PaymentId.eq(payment.id))
        .filter(refunds::Column::Status.eq(RefundStatus::Pending))
        .count(&txn)
        .await?;
    if pending == 0 && taken(&txn, payment).await? >= payment.amount_minor {
        super::compare_and_set(
            &txn,
            payment.id,
            PaymentStatus::Settled,
            PaymentStatus::Refunded,
            None,
        )
        .await?;
    }
    if let Some(order) = orders::Entity::find_by_id(refund.order_id).one(&txn).await? {
        crate::orders::manage::email_customer(
            &txn,
            &order,
            format!("refund-issued:{}", refund.id),
            EmailMessage::RefundIssued {
                order_id: refund.order_id,
                refund_id: refund.id,
            },
            job.request_id.clone(),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Moves a PENDING refund to `to`; false when it had already left PENDING.
async fn finish<C: ConnectionTrait>(
    conn: &C,
    id: RefundId,
    to: RefundStatus,
    error: Option<&str>,
) -> Result<bool, DomainError> {
    let updated = refunds::Entity::update_many()
        .col_expr(refunds::Column::Status, Expr::value(to.to_string()))
        .col_expr(refunds::Column::LastError, Expr::value(error.map(str::to_owned)))
        .col_expr(refunds::Column::CompletedAt, Expr::value(Utc::now()))
        .filter(refunds::Column::Id.eq(id))
        .filter(refunds::Column::Status.eq(RefundStatus::Pending.to_string()))
        .exec(conn)
        .await?;
    Ok(updated.rows_affected == 1)
}
