//! Delivering a [`RenderedEmail`]: over SMTP when `SMTP_URL` is set, else as
//! `.eml` files in the mail directory (`var/mail/` by default), so a laptop
//! without a mail server still shows every email the shop sends.
//!
//! Error policy: every failure of [`Mailer::send`] is either
//! [`MailError::Transient`] (the job layer retries it with backoff: SMTP 4xx,
//! connection refused, timeouts, I/O) or [`MailError::Permanent`] (the job
//! fails at once: SMTP 5xx, an invalid recipient) or [`MailError::Unavailable`]
//! (not sent: the SMTP circuit breaker is open; the job is postponed without
//! using an attempt). [`MailError::Config`] only comes from
//! [`Mailer::from_config`], at start-up. Error messages never contain
//! `SMTP_URL` itself, because it may carry credentials.
//!
//! Every SMTP send runs within `SMTP_TIMEOUT_MS` and through the SMTP
//! circuit breaker ([`crate::breaker`]): unreachable servers, timeouts and
//! 421 ("service not available") count as failures; any other reply, even a
//! refusal, shows the server is up.
use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::templates::{RenderedEmail, one_line};
use crate::breaker::{BreakerSettings, CircuitBreaker, Dependency, Guarded, Refused};

/// How SMTP sends are bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmtpLimits {
    /// `SMTP_TIMEOUT_MS` (default 30 s): one whole send, and each connection
    /// or command in it (lettre's own default is a minute per command).
    pub timeout: Duration,
    pub breaker: BreakerSettings,
}

impl Default for SmtpLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            breaker: BreakerSettings::default(),
        }
    }
}

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Where emails go; built once at start-up by [`Mailer::from_config`] and
/// cheap to clone (the SMTP variant shares one connection pool).
#[derive(Clone)]
pub enum Mailer {
    /// Relays through the SMTP server of `SMTP_URL`.
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// Shared by the clones, so the process has one SMTP breaker.
        breaker: Arc<CircuitBreaker>,
        timeout: Duration,
        from: Mailbox,
        /// `SMTP_URL` without credentials or query, for logs.
        endpoint: String,
    },
    /// Writes each email as `<uuid>.eml` into `dir`.
    File {
        transport: AsyncFileTransport<Tokio1Executor>,
        from: Mailbox,
        dir: PathBuf,
    },
}

/// Why an email could not be sent (or a mailer not built).
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `SMTP_URL`, `MAIL_FROM` or the mail directory is unusable; fix the
    /// configuration and restart.
    #[error("invalid mail configuration: {reason}")]
    Config {
        reason: String,
        #[source]
        source: Option<BoxError>,
    },
    /// Worth trying again later: the server deferred the email (4xx), could
    /// not be reached or timed out, or a file could not be written.
    #[error("temporary mail failure: {context}: {cause}")]
    Transient {
        context: &'static str,
        /// Part of the message rather than `source()`: the job layer stores
        /// `to_string()` on the delivery row, and the server's reply belongs there.
        cause: BoxError,
    },
    /// Not sent, the server not even tried: it failed repeatedly just now
    /// (the SMTP circuit breaker is open). Try again after `retry_after`.
    #[error(transparent)]
    Unavailable(Refused),
    /// Trying again will not help: the server rejected the email (5xx) or the
    /// recipient address is invalid.
    #[error("permanent mail failure: {context}: {cause}")]
    Permanent {
        context: &'static str,
        /// As for [`MailError::Transient`].
        cause: BoxError,
    },
}

impl MailError {
    /// True when retrying cannot succeed: the job should fail at once.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        matches!(self, MailError::Permanent { .. } | MailError::Config { .. })
    }

    /// True when the job should be retried after a backoff.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, MailError::Transient { .. })
    }

    /// The SMTP reply code (e.g. 450, 550) when the server answered with one.
    #[must_use]
    pub fn smtp_code(&self) -> Option<u16> {
        let cause = match self {
            MailError::Transient { cause, .. } | MailError::Permanent { cause, .. } => cause,
            MailError::Config { .. } | MailError::Unavailable(_) => return None,
        };
        cause
            .downcast_ref::<smtp::Error>()
            .and_then(smtp::Error::status)
            .map(u16::from)
    }

    fn config(reason: impl Into<String>) -> Self {
        MailError::Config {
            reason: reason.into(),
            source: None,
        }
    }

    fn config_caused_by(reason: impl Into<String>, source: impl Into<BoxError>) -> Self {
        MailError::Config {
            reason: reason.into(),
            source: Some(source.into()),
        }
    }
}

impl Mailer {
    /// Builds the mailer the configuration asks for.
    ///
    /// `smtp_url` (config `SMTP_URL`; blank counts as unset) takes one of
    /// these forms, each with optional `user:password@` credentials
    /// (percent-encoded):
    /// - `smtp://host:port`: plain SMTP without TLS, for local test servers;
    /// - `smtp://host:port?tls=starttls` or `smtp+starttls://host:port`:
    ///   STARTTLS, required (default port 587);
    /// - `smtps://host:port`: implicit TLS (default port 465).
    ///
    /// Without it, emails are written as `.eml` files into `mail_dir`, which is
    /// created if missing. `from` (config `MAIL_FROM`) is an address or
    /// `Name <address>`. Nothing is sent or connected to here.
    ///
    /// # Errors
    /// [`MailError::Config`] for an invalid `from`, an `smtp_url` in none of the
    /// forms above, or a `mail_dir` that cannot be created.
    ///
    /// # Panics
    /// With an `smtp_url`, when called outside a Tokio runtime: lettre's
    /// connection pool spawns its cleanup task on the current runtime.
    pub fn from_config(smtp_url: Option<&str>, mail_dir: &Path, from: &str) -> Result<Mailer, MailError> {
        Self::from_config_with(smtp_url, mail_dir, from, SmtpLimits::default())
    }

    /// [`Mailer::from_config`] with SMTP sends bounded by `limits`
    /// (`SMTP_TIMEOUT_MS`, the breaker settings) rather than the defaults.
    ///
    /// # Errors
    /// As [`Mailer::from_config`].
    ///
    /// # Panics
    /// As [`Mailer::from_config`].
    pub fn from_config_with(
        smtp_url: Option<&str>,
        mail_dir: &Path,
        from: &str,
        limits: SmtpLimits,
    ) -> Result<Mailer, MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|source| MailError::config_caused_by("MAIL_FROM is not a valid address", source))?;
        match smtp_url.map(str::trim).filter(|url| !url.is_empty()) {
            Some(url) => {
                let endpoint = SmtpEndpoint::parse(url)?;
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&endpoint.lettre_url)
                    .map_err(|source| MailError::config_caused_by("SMTP_URL is not usable", source))?
                    .timeout(Some(limits.timeout))
                    .build();
                Ok(Mailer::Smtp {
                    transport,
                    breaker: Arc::new(CircuitBreaker::new(Dependency::Smtp, limits.breaker)),
                    timeout: limits.timeout,
                    from,
                    endpoint: endpoint.redacted,
                })
            }
            None => {
                std::fs::create_dir_all(mail_dir).map_err(|source| {
                    MailError::config_caused_by(
                        format!("cannot create the mail directory {}", mail_dir.display()),
                        source,
                    )
                })?;
                Ok(Mailer::File {
                    transport: AsyncFileTransport::new(mail_dir),
                    from,
                    dir: mail_dir.to_path_buf(),
                })
            }
        }
    }

    /// Sends `email` as multipart/alternative (plain text first, then HTML)
    /// from the configured `MAIL_FROM`.
    ///
    /// # Errors
    /// [`MailError::Permanent`] for an invalid recipient or an SMTP 5xx reply;
    /// [`MailError::Transient`] for an SMTP 4xx reply, a connection or TLS
    /// failure, a timeout, or a file that could not be written;
    /// [`MailError::Unavailable`] when the SMTP breaker is open (not sent).
    pub async fn send(&self, email: &RenderedEmail) -> Result<(), MailError> {
        let to: Mailbox = email.to.parse().map_err(|cause| MailError::Permanent {
            context: "invalid recipient address",
            cause: Box::new(cause),
        })?;
        let mut message = Message::builder()
            .from(self.sender().clone())
            .to(to)
            .subject(one_line(&email.subject))
            .message_id(None);
        for (name, value) in [(TRACE_ID, &email.trace_id), (REQUEST_ID, &email.request_id)] {
            if let Some(value) = value.as_deref().filter(|v| is_token(v)) {
                message = message.raw_header(HeaderValue::new(name, value.to_owned()));
            }
        }
        let message = message
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|cause| MailError::Permanent {
                context: "the email could not be built",
                cause: Box::new(cause),
            })?;
        match self {
            Mailer::Smtp {
                transport,
                breaker,
                timeout,
                ..
            } => {
                let server_down =
                    |error: &smtp::Error| error.status().is_none_or(|code| u16::from(code) == 421);
                match breaker.call(*timeout, transport.send(message), server_down).await {
                    Ok(_) => Ok(()),
                    Err(Guarded::Refused(refused)) => Err(MailError::Unavailable(refused)),
                    Err(err @ Guarded::TimedOut(_)) => Err(MailError::Transient {
                        context: "the SMTP server did not answer in time",
                        cause: Box::new(err),
                    }),
                    Err(Guarded::Failed(error)) => Err(classify_smtp_error(error)),
                }
            }
            Mailer::File { transport, .. } => {
                transport
                    .send(message)
                    .await
                    .map(drop)
                    .map_err(|cause| MailError::Transient {
                        context: "the email file could not be written",
                        cause: Box::new(cause),
                    })
            }
        }
    }

    /// The `From:` of every email.
    #[must_use]
    pub fn sender(&self) -> &Mailbox {
        match self {
            Mailer::Smtp { from, .. } | Mailer::File { from, .. } => from,
        }
    }
}

impl fmt::Debug for Mailer {
    /// Shows where emails go, never the transport's internals (credentials).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mailer::Smtp { from, endpoint, .. } => f
                .debug_struct("Mailer::Smtp")
                .field("endpoint", endpoint)
                .field("from", &from.to_string())
                .finish_non_exhaustive(),
            Mailer::File { from, dir, .. } => f
                .debug_struct("Mailer::File")
                .field("dir", dir)
                .field("from", &from.to_string())
                .finish_non_exhaustive(),
        }
    }
}

/// The header with the id of the trace that sent the email (32 hex digits).
pub const TRACE_ID: HeaderName = HeaderName::new_from_ascii_str("X-Storefront-Trace-Id");
/// The header with the id of the HTTP request that caused the email.
pub const REQUEST_ID: HeaderName = HeaderName::new_from_ascii_str("X-Request-Id");

/// Ids are short runs of letters, digits, `-` and `_` (the api accepts no
/// other `X-Request-Id`); anything else, say from an old outbox row, is left
/// out rather than folded into a header.
fn is_token(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// SMTP 5xx is permanent; everything else lettre reports (4xx, refused or
/// dropped connections, timeouts, TLS handshakes, garbled replies) may well
/// work on a later attempt.
fn classify_smtp_error(error: smtp::Error) -> MailError {
    if error.is_permanent() {
        return MailError::Permanent {
            context: "the SMTP server rejected the email",
            cause: Box::new(error),
        };
    }
    let context = if error.is_transient() {
        "the SMTP server deferred the email"
    } else if error.is_timeout() {
        "the SMTP server did not answer in time"
    } else {
        "the SMTP server could not be reached"
    };
    MailError::Transient {
        context,
        cause: Box::new(error),
    }
}

/// `SMTP_URL` in our forms, translated into the URL lettre understands.
#[derive(Debug, PartialEq, Eq)]
struct SmtpEndpoint {
    /// `smtp://…`, `smtp://…?tls=required` or `smtps://…`, with credentials.
    lettre_url: String,
    /// Scheme, host and port only.
    redacted: String,
}

impl SmtpEndpoint {
    /// No error message here quotes the URL: it may carry a password.
    fn parse(url: &str) -> Result<Self, MailError> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            MailError::config(
                "SMTP_URL must look like smtp://host:port, smtp+starttls://host:port or smtps://host:port",
            )
        })?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut tls = None;
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            match pair.split_once('=') {
                Some(("tls", value)) => tls = Some(value.to_ascii_lowercase()),
                _ => {
                    return Err(MailError::config(
                        "SMTP_URL accepts only one query parameter: tls=starttls",
                    ));
                }
            }
        }
        let scheme = scheme.to_ascii_lowercase();
        let lettre_url = match (scheme.as_str(), tls.as_deref()) {
            ("smtp", None) => format!("smtp://{location}"),
            ("smtp", Some("starttls" | "required"))
            | ("smtp+starttls", None | Some("starttls" | "required")) => {
                format!("smtp://{location}?tls=required")
            }
            ("smtps", None) => format!("smtps://{location}"),
            ("smtp" | "smtp+starttls" | "smtps", Some(_)) => {
                return Err(MailError::config(
                    "SMTP_URL: tls must be starttls, on an smtp:// or smtp+starttls:// URL",
                ));
            }
            _ => {
                return Err(MailError::config(
                    "SMTP_URL scheme must be smtp, smtp+starttls or smtps",
                ));
            }
        };
        let authority = location.split('/').next().unwrap_or_default();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        Ok(SmtpEndpoint {
            lettre_url,
            redacted: format!("{scheme}://{host_port}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> SmtpEndpoint {
        SmtpEndpoint::parse(url).expect("a valid SMTP_URL")
    }

    #[test]
    fn smtp_urls_map_to_lettre_urls_and_hide_credentials() {
        assert_eq!(
            endpoint("smtp://127.0.0.1:2525"),
            SmtpEndpoint {
                lettre_url: "smtp://127.0.0.1:2525".into(),
                redacted: "smtp://127.0.0.1:2525".into(),
            }
        );
        assert_eq!(
            endpoint("smtp://user:p%40ss@mail.example.com:587?tls=starttls"),
            SmtpEndpoint {
                lettre_url: "smtp://user:p%40ss@mail.example.com:587?tls=required".into(),
                redacted: "smtp://mail.example.com:587".into(),
            }
        );
        assert_eq!(
            endpoint("smtp+starttls://u:p@mail.example.com").lettre_url,
            "smtp://u:p@mail.example.com?tls=required"
        );
        assert_eq!(
            endpoint("SMTPS://u:p@mail.example.com:465"),
            SmtpEndpoint {
                lettre_url: "smtps://u:p@mail.example.com:465".into(),
                redacted: "smtps://mail.example.com:465".into(),
            }
        );
    }

    #[test]
    fn unknown_schemes_and_parameters_are_refused_without_echoing_the_url() {
        for url in [
            "mail.example.com:25",
            "http://mail.example.com",
            "smtp://u:secret@mail.example.com?tsl=starttls",
            "smtps://u:secret@mail.example.com?tls=starttls",
            "smtp://u:secret@mail.example.com?tls=maybe",
        ] {
            let err = SmtpEndpoint::parse(url).expect_err(url);
            assert!(matches!(err, MailError::Config { .. }), "{url}: {err:?}");
            assert!(!err.to_string().contains("secret"), "{err}");
            assert!(err.is_permanent());
        }
    }

    #[test]
    fn from_config_validates_mail_from() {
        let dir = std::env::temp_dir();
        let err = Mailer::from_config(Some("smtp://127.0.0.1:2525"), &dir, "not an address")
            .expect_err("invalid MAIL_FROM");
        assert!(matches!(err, MailError::Config { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn from_config_chooses_smtp_only_with_a_url() {
        let dir = std::env::temp_dir();
        let from = "Storefront <shop@example.com>";
        let smtp =
            Mailer::from_config(Some("smtps://u:secret@mail.example.com"), &dir, from).expect("smtp mailer");
        let debug = format!("{smtp:?}");
        assert!(debug.contains("smtps://mail.example.com"), "{debug}");
        assert!(!debug.contains("secret"), "{debug}");
        let file = Mailer::from_config(Some("  "), &dir, from).expect("file mailer");
        assert!(matches!(file, Mailer::File { .. }), "{file:?}");
        assert_eq!(file.sender().email.to_string(), "shop@example.com");
    }
}
