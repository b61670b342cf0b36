//! Order confirmation: sent when an order is placed. The payment is
//! authorised but not captured yet, so this is not a receipt.
use super::{Block, Draft, Links, OrderSummary, greeting};

pub(super) fn draft<'a>(order: &'a OrderSummary, links: &Links) -> Draft<'a> {
    Draft {
        subject: format!("Order {} received", order.order_id),
        blocks: vec![
            Block::Heading("Thanks for your order!".to_owned()),
            greeting(&order.customer_name),
            Block::Paragraph(
                "We've received your order and are collecting the payment now. \
                 We'll send you a receipt as soon as it goes through."
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
