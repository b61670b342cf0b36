use entity::money::{Currency, Money};
use entity::orders::OrderStatus;
pub use testkit::{Behaviour, MAIL_FROM, Parsed, TestSmtp, parse};
use worker::notifications::{LineSummary, OrderSummary};

pub fn eur(amount_minor: i64) -> Money {
    Money::new(amount_minor, Currency::parse("EUR").expect("EUR"))
}

/// Two lines, €32.68 in all.
pub fn order(customer_name: &str, status: OrderStatus) -> OrderSummary {
    OrderSummary {
        order_id: entity::ids::OrderId::new(),
        customer_name: customer_name.to_owned(),
        lines: vec![
            LineSummary {
                name: "Coffee beans".to_owned(),
                quantity: 2,
                unit_price: eur(1234),
                subtotal: eur(2468),
            },
            LineSummary {
                name: "Enamel mug".to_owned(),
                quantity: 1,
                unit_price: eur(800),
                subtotal: eur(800),
            },
        ],
        breakdown: None,
        total: eur(3268),
        status,
        ship_to: None,
    }
}
