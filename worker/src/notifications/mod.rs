//! Notifications: the emails the shop sends, and how they leave the worker.
//!
//! The design, front to back:
//! - A mutation never sends mail. It writes a [`entity::jobs::SendEmail`] job
//!   to the outbox with a dedupe key (`order-confirmation:<order id>`); the
//!   job handler looks up what the email needs, turns it into an
//!   [`EmailContent`] and calls [`render`] then [`Mailer::send`]. Delivery is
//!   at least once, so the handler (not this module) records one delivery row
//!   per dedupe key and skips keys already sent.
//! - [`templates`] renders: one file per email with its subject and copy,
//!   each producing an HTML part and a plain-text part from the same content.
//!   Rendering is pure (no I/O, no clock), so it is unit-tested beside the
//!   code, and it HTML-escapes every interpolated value: names come from users.
//! - [`mailer`] delivers: SMTP (`SMTP_URL`, plain/STARTTLS/TLS) or `.eml`
//!   files under the mail directory when no SMTP server is configured. Its
//!   [`MailError`] says whether a failure is transient (retry) or permanent
//!   (fail the job now).
//!
//! Layout:
//! - `templates/`: [`EmailContent`], [`OrderSummary`], [`Links`], [`render`],
//!   and `welcome.rs`, `order_confirmation.rs`, `payment_receipt.rs`,
//!   `payment_failed.rs`, `order_cancelled.rs`, `order_shipped.rs`, `refund_issued.rs`,
//!   `password_reset.rs`;
//! - `mailer.rs`: [`Mailer`], [`MailError`].
pub mod mailer;
pub mod templates;

pub use mailer::{MailError, Mailer, SmtpLimits};
pub use templates::{
    Breakdown, DEFAULT_PUBLIC_URL, EmailContent, LineSummary, Links, OrderSummary, RefundSummary,
    RenderedEmail, render,
};
