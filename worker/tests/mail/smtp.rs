use entity::orders::OrderStatus;
use worker::notifications::{EmailContent, Links, render};

use crate::helpers::{Behaviour, Parsed, TestSmtp, order, parse};

const TO: &str = "ada@example.com";
const EVIL_NAME: &str = "<script>alert('pwned')</script> Ada";
const ESCAPED_NAME: &str = "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; Ada";

/// Sends one email through a fresh server and returns what it received.
async fn deliver(content: &EmailContent) -> Parsed {
    let server = TestSmtp::start(Behaviour::Accept);
    let links = Links::new("https://shop.example.com");
    let email = render(TO, content, &links);

    server
        .mailer()
        .send(&email)
        .await
        .expect("the server accepts the email");

    let received = server.received();
    assert_eq!(received.len(), 1, "{received:#?}");
    assert_eq!(received[0].mail_from, "shop@storefront.test");
    assert_eq!(received[0].rcpt_to, vec![TO.to_owned()]);
    let parsed = parse(&received[0].data);
    assert_eq!(parsed.to, TO);
    assert_eq!(parsed.from, "shop@storefront.test");
    assert_eq!(parsed.content_type, "multipart/alternative");
    assert_eq!(parsed.subject, email.subject);
    parsed
}

fn assert_escaped_name(parsed: &Parsed) {
    assert!(!parsed.html().contains("<script>"), "{}", parsed.html());
    assert!(parsed.html().contains(ESCAPED_NAME), "{}", parsed.html());
    assert!(parsed.text().contains(EVIL_NAME), "{}", parsed.text());
}

fn assert_order_details(parsed: &Parsed, order_id: entity::ids::OrderId) {
    let link = format!("https://shop.example.com/orders/{order_id}");
    for part in [parsed.text(), parsed.html()] {
        assert!(part.contains(&link), "no order link in {part}");
        assert!(part.contains("Coffee beans"), "{part}");
        assert!(part.contains("€12.34"), "unit price missing in {part}");
        assert!(part.contains("€24.68"), "subtotal missing in {part}");
        assert!(part.contains("€8.00"), "{part}");
        assert!(part.contains("€32.68"), "total missing in {part}");
    }
    assert!(
        parsed.html().contains(&format!("href=\"{link}\"")),
        "{}",
        parsed.html()
    );
    assert!(
        parsed.subject.contains(&order_id.to_string()),
        "{}",
        parsed.subject
    );
}

#[tokio::test]
async fn welcome_email_arrives_with_both_parts_and_an_escaped_name() {
    let parsed = deliver(&EmailContent::Welcome {
        name: EVIL_NAME.to_owned(),
    })
    .await;

    assert_eq!(parsed.subject, "Welcome to Storefront");
    assert_escaped_name(&parsed);
    assert!(
        parsed
            .text()
            .contains("Start shopping: https://shop.example.com/")
    );
}

#[tokio::test]
async fn order_confirmation_lists_the_lines_total_and_order_link() {
    let summary = order(EVIL_NAME, OrderStatus::PendingPayment);
    let parsed = deliver(&EmailContent::OrderConfirmation(summary.clone())).await;

    assert_eq!(parsed.subject, format!("Order {} received", summary.order_id));
    assert_order_details(&parsed, summary.order_id);
    assert_escaped_name(&parsed);
    assert!(parsed.text().contains("2 × Coffee beans — €12.34 each — €24.68"));
    assert!(parsed.text().contains("Awaiting payment"));
}

#[tokio::test]
async fn payment_receipt_names_the_amount_paid() {
    let summary = order(EVIL_NAME, OrderStatus::Paid);
    let parsed = deliver(&EmailContent::PaymentReceipt(summary.clone())).await;

    assert_eq!(
        parsed.subject,
        format!("Payment received for order {}", summary.order_id)
    );
    assert_order_details(&parsed, summary.order_id);
    assert_escaped_name(&parsed);
    assert!(
        parsed.text().contains("your payment of €32.68"),
        "{}",
        parsed.text()
    );
}

#[tokio::test]
async fn payment_failed_says_nothing_was_charged() {
    let summary = order(EVIL_NAME, OrderStatus::PaymentFailed);
    let parsed = deliver(&EmailContent::PaymentFailed(summary.clone())).await;

    assert_eq!(
        parsed.subject,
        format!("Payment failed for order {}", summary.order_id)
    );
    assert_order_details(&parsed, summary.order_id);
    assert_escaped_name(&parsed);
    assert!(
        parsed.text().contains("You have not been charged."),
        "{}",
        parsed.text()
    );
}

#[tokio::test]
async fn order_cancelled_explains_the_refund() {
    let summary = order(EVIL_NAME, OrderStatus::Cancelled);
    let parsed = deliver(&EmailContent::OrderCancelled(summary.clone())).await;

    assert_eq!(parsed.subject, format!("Order {} cancelled", summary.order_id));
    assert_order_details(&parsed, summary.order_id);
    assert_escaped_name(&parsed);
    assert!(parsed.text().contains("refunded €32.68"), "{}", parsed.text());
}

#[tokio::test]
async fn password_reset_links_to_the_form_with_the_encoded_token() {
    let parsed = deliver(&EmailContent::PasswordReset {
        name: EVIL_NAME.to_owned(),
        token: "s3cr3t/t0k+n=".to_owned(),
    })
    .await;

    let link = "https://shop.example.com/reset-password?token=s3cr3t%2Ft0k%2Bn%3D";
    assert_eq!(parsed.subject, "Reset your Storefront password");
    assert!(parsed.text().contains(link), "{}", parsed.text());
    assert!(
        parsed.html().contains(&format!("href=\"{link}\"")),
        "{}",
        parsed.html()
    );
    assert_escaped_name(&parsed);
}

#[tokio::test]
async fn one_mailer_sends_many_emails_over_its_pooled_connection() {
    let server = TestSmtp::start(Behaviour::Accept);
    let mailer = server.mailer();
    let links = Links::default();

    for n in 0..3 {
        let email = render(
            &format!("customer{n}@example.com"),
            &EmailContent::Welcome {
                name: format!("Customer {n}"),
            },
            &links,
        );
        mailer.send(&email).await.expect("sent");
    }

    let recipients: Vec<_> = server.received().into_iter().map(|r| r.rcpt_to).collect();
    assert_eq!(
        recipients,
        vec![
            vec!["customer0@example.com".to_owned()],
            vec!["customer1@example.com".to_owned()],
            vec!["customer2@example.com".to_owned()],
        ]
    );
}
