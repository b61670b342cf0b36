//! Order cancelled: sent when an order is cancelled, by the customer, an admin
//! or the expiry of an unpaid order. An authorised payment is voided and a
//! captured one refunded; the email covers both without knowing which.
use super::{Block, Draft, Links, OrderSummary, greeting};

pub(super) fn draft<'a>(order: &'a OrderSummary, links: &Links) -> Draft<'a> {
    Draft {
        subject: format!("Order {} cancelled", order.order_id),
        blocks: vec![
            Block::Heading("Your order has been cancelled".to_owned()),
            greeting(&order.customer_name),
            Block::Paragraph(format!("Order {} has been cancelled.", order.order_id)),
            Block::Paragraph(format!(
                "If you had already paid, we've refunded {} to your original payment method; \
                 it can take a few days to appear. If the payment was still pending, \
                 it has been released and you won't be charged.",
                order.total
            )),
            Block::Order(order),
            Block::Button {
                label: "View your order",
                url: links.order(order.order_id),
            },
        ],
    }
}
