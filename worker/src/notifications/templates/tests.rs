use entity::ids::OrderId;
use entity::money::{Currency, Money};
use entity::orders::OrderStatus;
use uuid::Uuid;

use super::layout::{escape, one_line, url_encode};
use super::{Breakdown, EmailContent, LineSummary, Links, OrderSummary, RefundSummary, render};

fn eur(amount_minor: i64) -> Money {
    Money::new(amount_minor, Currency::parse("EUR").expect("EUR is supported"))
}

fn order(customer_name: &str) -> OrderSummary {
    OrderSummary {
        order_id: "0192f0c1-2a3b-7c4d-8e5f-60718293a4b5".parse().expect("id"),
        customer_name: customer_name.to_owned(),
        lines: vec![
            LineSummary {
                name: "Coffee beans".to_owned(),
                quantity: 2,
                unit_price: eur(1234),
                subtotal: eur(2468),
            },
            LineSummary {
                name: "Mug & saucer".to_owned(),
                quantity: 1,
                unit_price: eur(800),
                subtotal: eur(800),
            },
        ],
        breakdown: None,
        total: eur(3268),
        status: OrderStatus::PendingPayment,
        ship_to: None,
    }
}

/// [`order`] as checkout placed it: a code, shipping, tax added, an address.
fn checkout_order(customer_name: &str) -> OrderSummary {
    OrderSummary {
        breakdown: Some(Breakdown {
            subtotal: eur(3268),
            discount: eur(327),
            discount_code: Some("WELCOME10".to_owned()),
            shipping: eur(490),
            shipping_method: Some("Standard & tracked".to_owned()),
            tax: eur(686),
            tax_included: false,
        }),
        total: eur(4117),
        ship_to: Some(vec![
            "Ada Lovelace".to_owned(),
            "12 St James's Square".to_owned(),
            "SW1Y 4JH London".to_owned(),
            "GB".to_owned(),
        ]),
        ..order(customer_name)
    }
}

fn every_email(name: &str) -> Vec<EmailContent> {
    vec![
        EmailContent::Welcome {
            name: name.to_owned(),
        },
        EmailContent::OrderConfirmation(order(name)),
        EmailContent::PaymentReceipt(OrderSummary {
            status: OrderStatus::Paid,
            ..order(name)
        }),
        EmailContent::PaymentFailed(OrderSummary {
            status: OrderStatus::PaymentFailed,
            ..order(name)
        }),
        EmailContent::OrderCancelled(OrderSummary {
            status: OrderStatus::Cancelled,
            ..order(name)
        }),
        EmailContent::OrderShipped(OrderSummary {
            status: OrderStatus::Fulfilled,
            ..checkout_order(name)
        }),
        EmailContent::RefundIssued(RefundSummary {
            order: OrderSummary {
                status: OrderStatus::Paid,
                ..order(name)
            },
            amount: eur(800),
            reason: "Mug arrived chipped & cracked".to_owned(),
        }),
        EmailContent::PasswordReset {
            name: name.to_owned(),
            token: "tok/en+with=odd&chars".to_owned(),
        },
    ]
}

#[test]
fn every_email_has_a_subject_an_html_part_and_a_text_part() {
    let links = Links::default();
    for content in every_email("Ada") {
        let email = render("ada@example.com", &content, &links);
        assert_eq!(email.to, "ada@example.com");
        assert!(!email.subject.is_empty(), "{}", content.template());
        assert!(
            email.html.starts_with("<!DOCTYPE html>"),
            "{}",
            content.template()
        );
        assert!(email.html.contains("Hi Ada,"), "{}", content.template());
        assert!(email.text.contains("Hi Ada,"), "{}", content.template());
        assert!(!email.text.contains('<'), "text part has markup: {}", email.text);
        assert!(
            email.text.contains("http://127.0.0.1:8080/"),
            "{}",
            content.template()
        );
    }
}

#[test]
fn order_emails_show_the_lines_total_and_a_link_to_the_order() {
    let links = Links::new("https://shop.example.com/");
    let email = render(
        "ada@example.com",
        &EmailContent::OrderConfirmation(order("Ada")),
        &links,
    );

    let order_url = "https://shop.example.com/orders/0192f0c1-2a3b-7c4d-8e5f-60718293a4b5";
    assert_eq!(
        email.subject,
        "Order 0192f0c1-2a3b-7c4d-8e5f-60718293a4b5 received"
    );
    for part in [&email.html, &email.text] {
        assert!(part.contains(order_url), "{part}");
        assert!(part.contains("€12.34"), "{part}");
        assert!(part.contains("€24.68"), "{part}");
        assert!(part.contains("€32.68"), "{part}");
        assert!(part.contains("Awaiting payment"), "{part}");
    }
    assert!(email.text.contains("2 × Coffee beans — €12.34 each — €24.68"));
    assert!(email.html.contains("Mug &amp; saucer"));
    assert!(email.text.contains("Mug & saucer"));
}

#[test]
fn receipts_failures_and_cancellations_name_the_amount() {
    let links = Links::default();
    for content in every_email("Ada").into_iter().skip(2).take(3) {
        let email = render("ada@example.com", &content, &links);
        assert!(
            email.text.contains("€32.68 for order 0192f0c1") || email.text.contains("refunded €32.68"),
            "{}: {}",
            content.template(),
            email.text
        );
        assert!(email.subject.contains("0192f0c1-2a3b-7c4d-8e5f-60718293a4b5"));
    }
}

#[test]
fn user_supplied_text_is_escaped_in_html_but_kept_verbatim_in_text() {
    let name = "<script>alert('x')</script> & \"Bob\"";
    for content in every_email(name) {
        let email = render("bob@example.com", &content, &Links::default());
        assert!(!email.html.contains("<script>"), "{}", content.template());
        assert!(
            email
                .html
                .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;Bob&quot;"),
            "{}",
            content.template()
        );
        assert!(email.text.contains(name), "{}", content.template());
    }
}

#[test]
fn product_names_are_escaped_too() {
    let mut summary = order("Ada");
    summary.lines[0].name = "<img src=x onerror=alert(1)>".to_owned();
    let email = render(
        "ada@example.com",
        &EmailContent::PaymentReceipt(summary),
        &Links::default(),
    );
    assert!(!email.html.contains("<img"));
    assert!(email.html.contains("&lt;img src=x onerror=alert(1)&gt;"));
}

#[test]
fn the_reset_link_carries_the_token_url_encoded() {
    let email = render(
        "ada@example.com",
        &EmailContent::PasswordReset {
            name: "Ada".to_owned(),
            token: "a b/c+d=&é".to_owned(),
        },
        &Links::new("https://shop.example.com"),
    );
    let url = "https://shop.example.com/reset-password?token=a%20b%2Fc%2Bd%3D%26%C3%A9";
    assert!(email.text.contains(url), "{}", email.text);
    assert!(email.html.contains(&format!("href=\"{url}\"")), "{}", email.html);
    assert!(email.text.contains("expires in 1 hour"));
    assert_eq!(email.subject, "Reset your Storefront password");
}

#[test]
fn links_are_built_from_the_public_url() {
    let links = Links::new(" https://shop.example.com/ ");
    let id = OrderId(Uuid::nil());
    assert_eq!(links.base_url(), "https://shop.example.com");
    assert_eq!(links.home(), "https://shop.example.com/");
    assert_eq!(
        links.order(id),
        "https://shop.example.com/orders/00000000-0000-0000-0000-000000000000"
    );
    assert_eq!(
        links.password_reset("abc-_.~XYZ09"),
        "https://shop.example.com/reset-password?token=abc-_.~XYZ09"
    );
    assert_eq!(Links::default().home(), "http://127.0.0.1:8080/");
}

#[test]
fn subjects_cannot_carry_header_breaks() {
    assert_eq!(
        one_line("Order\r\nBcc: x@example.com"),
        "Order Bcc: x@example.com"
    );
    assert_eq!(one_line("  a\t\tb \u{0} c  "), "a b c");
}

#[test]
fn a_blank_name_gets_a_generic_greeting() {
    let email = render(
        "ada@example.com",
        &EmailContent::Welcome {
            name: "   ".to_owned(),
        },
        &Links::default(),
    );
    assert!(email.text.contains("Hi there,"));
}

#[test]
fn escaping_and_encoding_helpers() {
    assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
    assert_eq!(escape("plain €"), "plain €");
    assert_eq!(url_encode("€ ?"), "%E2%82%AC%20%3F");
}

#[test]
fn the_refund_email_says_how_much_and_why_in_both_parts() {
    let content = every_email("Ada")
        .into_iter()
        .find(|c| c.template() == "refund_issued")
        .expect("a refund email");
    let email = render("ada@example.com", &content, &Links::default());
    assert_eq!(
        email.subject,
        "Refund of €8.00 for order 0192f0c1-2a3b-7c4d-8e5f-60718293a4b5"
    );
    assert!(
        email.text.contains("We've refunded €8.00 of order"),
        "{}",
        email.text
    );
    assert!(
        email.text.contains("Reason: Mug arrived chipped & cracked"),
        "{}",
        email.text
    );
    assert!(
        email.html.contains("Reason: Mug arrived chipped &amp; cracked"),
        "{}",
        email.html
    );
}

#[test]
fn checkout_orders_show_the_breakdown_the_code_and_the_address() {
    for content in [
        EmailContent::OrderConfirmation(checkout_order("Ada")),
        EmailContent::OrderShipped(OrderSummary {
            status: OrderStatus::Fulfilled,
            ..checkout_order("Ada")
        }),
    ] {
        let email = render("ada@example.com", &content, &Links::default());
        for part in [&email.html, &email.text] {
            for shown in [
                "Subtotal",
                "Discount (WELCOME10)",
                "-€3.27",
                "€4.90",
                "Tax",
                "€6.86",
                "€41.17",
                "Ada Lovelace",
                "SW1Y 4JH London",
            ] {
                assert!(part.contains(shown), "{}: {shown} in {part}", content.template());
            }
        }
        assert!(
            email.text.contains("Shipping (Standard & tracked): €4.90"),
            "{}",
            email.text
        );
        assert!(email.html.contains("Standard &amp; tracked"), "escaped in HTML");
        assert!(email.html.contains("12 St James&#39;s Square"));
        assert!(
            email
                .text
                .contains("Ships to:\n  Ada Lovelace\n  12 St James's Square")
        );
    }
    let shipped = render(
        "ada@example.com",
        &EmailContent::OrderShipped(checkout_order("Ada")),
        &Links::default(),
    );
    assert!(shipped.subject.ends_with("is on its way"), "{}", shipped.subject);
}

#[test]
fn an_inclusive_shop_shows_the_tax_as_included() {
    let mut order = checkout_order("Ada");
    if let Some(breakdown) = order.breakdown.as_mut() {
        breakdown.tax_included = true;
    }
    let email = render(
        "ada@example.com",
        &EmailContent::OrderConfirmation(order),
        &Links::default(),
    );
    assert!(email.text.contains("Tax included: €6.86"), "{}", email.text);
}
