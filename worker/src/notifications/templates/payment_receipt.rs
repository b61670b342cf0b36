//! Payment receipt: sent when the payment of an order has been captured.
use super::{Block, Draft, Links, OrderSummary, greeting};

pub(super) fn draft<'a>(order: &'a OrderSummary, links: &Links) -> Draft<'a> {
    Draft {
        subject: format!("Payment received for order {}", order.order_id),
        blocks: vec![
            Block::Heading("Payment received".to_owned()),
            greeting(&order.customer_name),
            Block::Paragraph(format!(
                "Thank you! We've received your payment of {} for order {}. \
                 We're getting your order ready now.",
                order.total, order.order_id
            )),
            Block::Order(order),
            Block::Button {
                label: "View your order",
                url: links.order(order.order_id),
            },
            Block::Note("Keep this email as your receipt.".to_owned()),
        ],
    }
}
