use std::net::TcpListener;

use worker::notifications::{EmailContent, Links, MailError, Mailer, RenderedEmail, render};

use crate::helpers::{Behaviour, MAIL_FROM, TestSmtp};

fn welcome(to: &str) -> RenderedEmail {
    render(
        to,
        &EmailContent::Welcome {
            name: "Ada".to_owned(),
        },
        &Links::default(),
    )
}

async fn send_to(behaviour: Behaviour) -> MailError {
    let server = TestSmtp::start(behaviour);
    let err = server
        .mailer()
        .send(&welcome("ada@example.com"))
        .await
        .expect_err("the server refuses");
    assert!(server.received().is_empty());
    err
}

#[tokio::test]
async fn a_450_to_rcpt_is_transient() {
    let err = send_to(Behaviour::RejectRecipient(450)).await;

    assert!(matches!(err, MailError::Transient { .. }), "{err:?}");
    assert!(err.is_transient() && !err.is_permanent());
    assert_eq!(err.smtp_code(), Some(450));
    let message = err.to_string();
    assert!(
        message.contains("450") && message.contains("recipient refused"),
        "{message}"
    );
}

#[tokio::test]
async fn a_550_to_rcpt_is_permanent() {
    let err = send_to(Behaviour::RejectRecipient(550)).await;

    assert!(matches!(err, MailError::Permanent { .. }), "{err:?}");
    assert!(err.is_permanent() && !err.is_transient());
    assert_eq!(err.smtp_code(), Some(550));
    assert!(err.to_string().contains("550"), "{err}");
}

#[tokio::test]
async fn a_451_after_data_is_transient() {
    let err = send_to(Behaviour::RejectData(451)).await;

    assert!(err.is_transient(), "{err:?}");
    assert_eq!(err.smtp_code(), Some(451));
}

#[tokio::test]
async fn a_554_after_data_is_permanent() {
    let err = send_to(Behaviour::RejectData(554)).await;

    assert!(err.is_permanent(), "{err:?}");
    assert_eq!(err.smtp_code(), Some(554));
}

/// A mailer for a port nothing listens on (taken free, then closed), so
/// every connection is refused.
fn unreachable_mailer() -> Mailer {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    Mailer::from_config(
        Some(&format!("smtp://127.0.0.1:{port}")),
        &std::env::temp_dir(),
        MAIL_FROM,
    )
    .expect("SMTP mailer")
}

#[tokio::test]
async fn nothing_listening_is_transient() {
    let mailer = unreachable_mailer();

    let err = mailer
        .send(&welcome("ada@example.com"))
        .await
        .expect_err("nothing listens");

    assert!(matches!(err, MailError::Transient { .. }), "{err:?}");
    assert_eq!(err.smtp_code(), None);
}

#[tokio::test]
async fn five_refused_connections_open_the_smtp_breaker_but_refusals_from_a_live_server_do_not() {
    let unreachable = unreachable_mailer();
    for _ in 0..5 {
        let err = unreachable
            .send(&welcome("ada@example.com"))
            .await
            .expect_err("refused");
        assert!(matches!(err, MailError::Transient { .. }), "{err:?}");
    }
    let err = unreachable
        .send(&welcome("ada@example.com"))
        .await
        .expect_err("not tried");
    assert!(matches!(err, MailError::Unavailable(_)), "{err:?}");
    assert!(
        !err.is_permanent(),
        "an open breaker postpones, never fails a job"
    );

    let refusing = TestSmtp::start(Behaviour::RejectRecipient(550));
    let mailer = refusing.mailer();
    for _ in 0..7 {
        let err = mailer.send(&welcome("ada@example.com")).await.expect_err("550");
        assert!(err.is_permanent(), "an answer, every time: {err:?}");
    }
}

#[tokio::test]
async fn an_invalid_recipient_is_permanent_and_never_reaches_the_server() {
    let server = TestSmtp::start(Behaviour::Accept);

    let err = server
        .mailer()
        .send(&welcome("not an address"))
        .await
        .expect_err("invalid address");

    assert!(matches!(err, MailError::Permanent { .. }), "{err:?}");
    assert!(server.received().is_empty());
}
