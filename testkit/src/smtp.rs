//! A real SMTP server that runs inside a test process and records what it
//! receives, and MIME parsing of what it got. Used by the worker's mail
//! tests and by the api's end-to-end job tests.
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use mailin_embedded::{Action, Handler, Response, Server, response};
use worker::notifications::Mailer;

pub const MAIL_FROM: &str = "Storefront <shop@storefront.test>";

/// SMTP sessions served at once.
const SESSIONS: u32 = 24;

/// How the embedded server answers.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// 250 to everything: the mail is stored in the inbox.
    Accept,
    /// Answers `RCPT TO` with this code.
    RejectRecipient(u16),
    /// Accepts the message body, then answers the final `.` with this code.
    RejectData(u16),
}

/// One message as the server received it.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
}

/// A real SMTP server in a background thread, listening on 127.0.0.1.
/// It lives until the test process exits (the crate has no shutdown hook);
/// each test starts its own, on its own port.
pub struct TestSmtp {
    port: u16,
    inbox: Arc<Mutex<Vec<Received>>>,
}

impl TestSmtp {
    pub fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("local address").port();
        let inbox = Arc::new(Mutex::new(Vec::new()));
        let handler = Recorder {
            behaviour,
            inbox: Arc::clone(&inbox),
            current: Received::default(),
        };
        let mut server = Server::new(handler);
        server
            .with_name("smtp.storefront.test")
            // One thread per open session. Each mailer keeps up to 10
            // connections open in its pool (lettre's default), and a
            // session waiting for a free thread would hang its sender
            // until the SMTP timeout: room for two workers' pools.
            .with_num_threads(SESSIONS)
            .with_tcp_listener(listener);
        thread::spawn(move || {
            if let Err(err) = server.serve() {
                eprintln!("the test SMTP server stopped: {err}");
            }
        });
        Self { port, inbox }
    }

    /// `smtp://127.0.0.1:PORT`: plain SMTP, as `SMTP_URL` spells it.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn mailer(&self) -> Mailer {
        let unused = std::env::temp_dir();
        Mailer::from_config(Some(&self.url()), &unused, MAIL_FROM).expect("SMTP mailer")
    }

    pub fn received(&self) -> Vec<Received> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The messages received so far whose subject contains `fragment`, parsed.
    pub fn about(&self, fragment: &str) -> Vec<Parsed> {
        self.received()
            .iter()
            .map(|m| parse(&m.data))
            .filter(|m| m.subject.contains(fragment))
            .collect()
    }

    /// Waits (20 s at most) until `count` messages about `fragment` have
    /// arrived and returns them all; panics with the subjects received.
    pub async fn wait_for(&self, fragment: &str, count: usize) -> Vec<Parsed> {
        for _ in 0..200 {
            let found = self.about(fragment);
            if found.len() >= count {
                return found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let all: Vec<String> = self.received().iter().map(|m| parse(&m.data).subject).collect();
        panic!("expected {count} emails about {fragment:?}; received: {all:?}");
    }
}

/// mailin calls a clone of this per connection: `current` is the message
/// in progress on that connection, `inbox` is shared.
#[derive(Clone)]
struct Recorder {
    behaviour: Behaviour,
    inbox: Arc<Mutex<Vec<Received>>>,
    current: Received,
}

impl Handler for Recorder {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.current = Received {
            mail_from: from.to_owned(),
            ..Received::default()
        };
        response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        if let Behaviour::RejectRecipient(code) = self.behaviour {
            return Response::custom(code, format!("{code} recipient refused by the test server"));
        }
        self.current.rcpt_to.push(to.to_owned());
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if let Behaviour::RejectData(code) = self.behaviour {
            // mailin 0.6 stays in its DATA state after refusing the final
            // `.`, and would then swallow the client's RSET/QUIT as message
            // text (the client waits for its timeout). Closing the connection
            // after the reply, as many real servers do, keeps the test fast.
            let mut refusal = Response::custom(code, format!("{code} message refused by the test server"));
            refusal.action = Action::Close;
            return refusal;
        }
        self.inbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(std::mem::take(&mut self.current));
        response::OK
    }
}

/// What a mail client would show of a message.
#[derive(Debug)]
pub struct Parsed {
    pub subject: String,
    pub from: String,
    pub to: String,
    /// `multipart/alternative` for every email the shop sends.
    pub content_type: String,
    /// Decoded bodies of the `text/plain` parts.
    pub text_parts: Vec<String>,
    /// Decoded bodies of the `text/html` parts.
    pub html_parts: Vec<String>,
    /// Every top-level header, name as sent, value as text.
    pub headers: Vec<(String, String)>,
}

impl Parsed {
    /// The value of the header `name` (any letter case), when there is one.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The token of the password reset link (`…/reset-password?token=…`)
    /// in the text part; panics when there is none.
    pub fn reset_token(&self) -> String {
        let text = self.text();
        let start = text
            .find("reset-password?token=")
            .unwrap_or_else(|| panic!("no reset link in: {text}"))
            + "reset-password?token=".len();
        text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }

    pub fn text(&self) -> &str {
        assert_eq!(self.text_parts.len(), 1, "one text/plain part: {self:#?}");
        &self.text_parts[0]
    }

    pub fn html(&self) -> &str {
        assert_eq!(self.html_parts.len(), 1, "one text/html part: {self:#?}");
        &self.html_parts[0]
    }
}

pub fn parse(raw: &[u8]) -> Parsed {
    let message = MessageParser::default()
        .parse(raw)
        .unwrap_or_else(|| panic!("not a MIME message:\n{}", String::from_utf8_lossy(raw)));
    let mime_type = |part: &mail_parser::MessagePart<'_>| {
        part.content_type().map_or_else(String::new, |ct| {
            format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default())
        })
    };
    let mut text_parts = Vec::new();
    let mut html_parts = Vec::new();
    for part in message.parts.iter().skip(1) {
        match (&part.body, mime_type(part).as_str()) {
            (PartType::Text(body), "text/plain") => text_parts.push(body.to_string()),
            (PartType::Html(body), "text/html") => html_parts.push(body.to_string()),
            (body, kind) => panic!("unexpected part {kind}: {body:?}"),
        }
    }
    let first_address = |address: Option<&mail_parser::Address<'_>>| {
        address
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_owned()
    };
    Parsed {
        subject: message.subject().unwrap_or_default().to_owned(),
        from: first_address(message.from()),
        to: first_address(message.to()),
        content_type: mime_type(message.root_part()),
        text_parts,
        html_parts,
        headers: message
            .headers()
            .iter()
            .map(|header| {
                let value = header.value().as_text().unwrap_or_default().to_owned();
                (header.name().to_owned(), value)
            })
            .collect(),
    }
}
