//! Refund issued: sent when the gateway confirms an admin's refund (all or
//! part of an order), with the amount and the reason the admin gave.
use super::{Block, Draft, Links, RefundSummary, greeting};

pub(super) fn draft<'a>(refund: &'a RefundSummary, links: &Links) -> Draft<'a> {
    let order = &refund.order;
    Draft {
        subject: format!("Refund of {} for order {}", refund.amount, order.order_id),
        blocks: vec![
            Block::Heading("We've refunded you".to_owned()),
            greeting(&order.customer_name),
            Block::Paragraph(format!(
                "We've refunded {} of order {} to your original payment method; \
                 it can take a few days to appear.",
                refund.amount, order.order_id
            )),
            Block::Paragraph(format!("Reason: {}", refund.reason)),
            Block::Order(order),
            Block::Button {
                label: "View your order",
                url: links.order(order.order_id),
            },
        ],
    }
}
