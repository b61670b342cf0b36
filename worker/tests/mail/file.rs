use worker::notifications::{EmailContent, Links, Mailer, render};

use crate::helpers::{MAIL_FROM, order, parse};

#[tokio::test]
async fn without_smtp_url_emails_are_written_as_eml_files() {
    let root = tempfile::tempdir().expect("temp dir");
    let mail_dir = root.path().join("var").join("mail");
    let mailer = Mailer::from_config(None, &mail_dir, MAIL_FROM).expect("file mailer");
    assert!(mail_dir.is_dir(), "the mail directory is created");
    let summary = order("Ada", entity::orders::OrderStatus::PendingPayment);
    let email = render(
        "ada@example.com",
        &EmailContent::OrderConfirmation(summary.clone()),
        &Links::default(),
    );

    mailer.send(&email).await.expect("written");

    let files: Vec<_> = std::fs::read_dir(&mail_dir)
        .expect("list the mail directory")
        .map(|entry| entry.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
    let parsed = parse(&std::fs::read(&files[0]).expect("read the .eml"));
    assert_eq!(parsed.to, "ada@example.com");
    assert_eq!(parsed.from, "shop@storefront.test");
    assert_eq!(parsed.subject, email.subject);
    assert_eq!(parsed.content_type, "multipart/alternative");
    let link = format!("http://127.0.0.1:8080/orders/{}", summary.order_id);
    assert!(parsed.text().contains(&link), "{}", parsed.text());
    assert!(parsed.html().contains(&link), "{}", parsed.html());
}

#[test]
fn an_unwritable_mail_dir_is_a_configuration_error() {
    let root = tempfile::tempdir().expect("temp dir");
    let blocker = root.path().join("not-a-dir");
    std::fs::write(&blocker, b"a file where the directory should be").expect("write");

    let err = Mailer::from_config(None, &blocker.join("mail"), MAIL_FROM)
        .expect_err("cannot create a directory under a file");

    assert!(
        matches!(err, worker::notifications::MailError::Config { .. }),
        "{err:?}"
    );
}
