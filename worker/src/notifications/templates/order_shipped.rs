//! Order shipped: sent when an admin marks an order fulfilled, with the
//! address it is on its way to.
use super::{Block, Draft, Links, OrderSummary, greeting};

pub(super) fn draft<'a>(order: &'a OrderSummary, links: &Links) -> Draft<'a> {
    Draft {
        subject: format!("Order {} is on its way", order.order_id),
        blocks: vec![
            Block::Heading("Your order is on its way".to_owned()),
            greeting(&order.customer_name),
            Block::Paragraph("Good news: we've packed your order and handed it to the carrier.".to_owned()),
            Block::Order(order),
            Block::Button {
                label: "View your order",
                url: links.order(order.order_id),
            },
        ],
    }
}
