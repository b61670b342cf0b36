//! Payment failed: sent when capturing the payment failed for good. The order
//! is PAYMENT_FAILED, its stock is back on the shelf and nothing was charged.
use super::{Block, Draft, Links, OrderSummary, greeting};

pub(super) fn draft<'a>(order: &'a OrderSummary, links: &Links) -> Draft<'a> {
    Draft {
        subject: format!("Payment failed for order {}", order.order_id),
        blocks: vec![
            Block::Heading("Your payment didn't go through".to_owned()),
            greeting(&order.customer_name),
            Block::Paragraph(format!(
                "We couldn't collect the payment of {} for order {}, so we couldn't complete \
                 the order. You have not been charged.",
                order.total, order.order_id
            )),
            Block::Paragraph(
                "If you'd still like these items, please place the order again, \
                 with another payment method if you can."
                    .to_owned(),
            ),
            Block::Order(order),
            Block::Button {
                label: "View your order",
                url: links.order(order.order_id),
            },
        ],
    }
}
