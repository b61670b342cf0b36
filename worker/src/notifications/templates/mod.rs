//! The eight emails the shop sends, one file per email.
//!
//! A template is a plain Rust function that returns a `Draft`: the subject
//! and a short list of `Block`s (heading, paragraph, button, order table,
//! footnote) holding *unescaped* text. `layout` turns that one list into both
//! the HTML part and the plain-text part, so the two parts always say the same
//! thing, and every value is HTML-escaped in exactly one place: a template
//! cannot forget to escape a customer's name because it never writes markup.
//!
//! Layout:
//! - this module: the inputs ([`EmailContent`], [`OrderSummary`]), the
//!   output ([`RenderedEmail`]), [`Links`] and [`render`];
//! - `layout`: blocks to HTML and text, escaping, URL encoding;
//! - one module per email: its subject and copy.
use entity::ids::OrderId;
use entity::money::Money;
use entity::orders::OrderStatus;

mod layout;
pub(crate) use layout::one_line;
mod order_cancelled;
mod order_confirmation;
mod order_shipped;
mod password_reset;
mod payment_failed;
mod payment_receipt;
mod refund_issued;
mod welcome;

use layout::Block;

/// The name the emails sign with.
pub const SHOP_NAME: &str = "Storefront";

/// Where links in emails point when `PUBLIC_URL` is not set: the api's
/// default bind address, which is right for a laptop and wrong everywhere else.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// Which email to send, with everything it shows. The job layer fills it
/// from the database; rendering never does I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailContent {
    /// Sent once after registration.
    Welcome { name: String },
    /// Sent when an order is placed (payment authorised, not yet captured).
    OrderConfirmation(OrderSummary),
    /// Sent when the payment of an order is captured.
    PaymentReceipt(OrderSummary),
    /// Sent when capturing the payment failed for good.
    PaymentFailed(OrderSummary),
    /// Sent when an order is cancelled (by the customer, an admin or expiry).
    OrderCancelled(OrderSummary),
    /// Sent when an admin marks an order fulfilled: it is on its way.
    OrderShipped(OrderSummary),
    /// Sent when an admin's refund went through.
    RefundIssued(RefundSummary),
    /// Sent on `requestPasswordReset`; `token` is the single-use secret that
    /// goes into the link (the database keeps only its hash).
    PasswordReset { name: String, token: String },
}

impl EmailContent {
    /// The template name, as in [`entity::jobs::EmailMessage::template`].
    #[must_use]
    pub fn template(&self) -> &'static str {
        match self {
            EmailContent::Welcome { .. } => "welcome",
            EmailContent::OrderConfirmation(_) => "order_confirmation",
            EmailContent::PaymentReceipt(_) => "payment_receipt",
            EmailContent::PaymentFailed(_) => "payment_failed",
            EmailContent::OrderCancelled(_) => "order_cancelled",
            EmailContent::OrderShipped(_) => "order_shipped",
            EmailContent::RefundIssued(_) => "refund_issued",
            EmailContent::PasswordReset { .. } => "password_reset",
        }
    }
}

/// An order as an email shows it: snapshotted names and prices, never the
/// current catalog (the customer must see what they bought, at that price).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSummary {
    pub order_id: OrderId,
    /// Used in the greeting; comes from the user, so it is escaped.
    pub customer_name: String,
    pub lines: Vec<LineSummary>,
    /// Subtotal, discount, shipping and tax, for an order placed through
    /// checkout; `None` for one that has only a total.
    pub breakdown: Option<Breakdown>,
    pub total: Money,
    pub status: OrderStatus,
    /// The address lines it ships to, as the order kept them.
    pub ship_to: Option<Vec<String>>,
}

/// An order's money as checkout computed it (`entity::pricing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breakdown {
    pub subtotal: Money,
    pub discount: Money,
    /// The code that gave the discount.
    pub discount_code: Option<String>,
    pub shipping: Money,
    pub shipping_method: Option<String>,
    pub tax: Money,
    /// `true` when the prices include the tax (it is shown, not added).
    pub tax_included: bool,
}

/// A refund as its email shows it, with the order it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundSummary {
    pub order: OrderSummary,
    pub amount: Money,
    /// The admin's reason, shown to the customer (escaped like every value).
    pub reason: String,
}

/// One line of an [`OrderSummary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSummary {
    /// The product name at order time.
    pub name: String,
    pub quantity: u32,
    pub unit_price: Money,
    /// `unit_price × quantity`, as stored with the order.
    pub subtotal: Money,
}

/// A finished email, ready for a [`super::Mailer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub to: String,
    /// One line, no control characters.
    pub subject: String,
    pub html: String,
    pub text: String,
    /// Where it came from, sent as `X-Storefront-Trace-Id` and `X-Request-Id`
    /// headers so a support desk can find the request and its trace from a
    /// customer's email ([`RenderedEmail::traced`]); `None` leaves a header out.
    pub trace_id: Option<String>,
    pub request_id: Option<String>,
}

impl RenderedEmail {
    /// The same email, marked with the trace and the request it came from.
    #[must_use]
    pub fn traced(self, trace_id: Option<String>, request_id: Option<String>) -> Self {
        Self {
            trace_id,
            request_id,
            ..self
        }
    }
}

/// Builds the absolute links emails contain, from the shop's public URL
/// (config `PUBLIC_URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    /// Without a trailing slash, e.g. `https://shop.example.com`.
    base_url: String,
}

impl Links {
    /// Links under `base_url` (a trailing `/` is ignored).
    #[must_use]
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim().trim_end_matches('/').to_owned(),
        }
    }

    /// The public URL links start with, without a trailing slash.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The shop's front page: `{base}/`.
    #[must_use]
    pub fn home(&self) -> String {
        format!("{}/", self.base_url)
    }

    /// One order's page: `{base}/orders/{id}`.
    #[must_use]
    pub fn order(&self, order_id: OrderId) -> String {
        format!("{}/orders/{order_id}", self.base_url)
    }

    /// The reset form: `{base}/reset-password?token={token}`, token
    /// percent-encoded.
    #[must_use]
    pub fn password_reset(&self, token: &str) -> String {
        format!(
            "{}/reset-password?token={}",
            self.base_url,
            layout::url_encode(token)
        )
    }
}

impl Default for Links {
    fn default() -> Self {
        Self::new(DEFAULT_PUBLIC_URL)
    }
}

/// Renders `content` as an email to `to`.
#[must_use]
pub fn render(to: &str, content: &EmailContent, links: &Links) -> RenderedEmail {
    let draft = match content {
        EmailContent::Welcome { name } => welcome::draft(name, links),
        EmailContent::OrderConfirmation(order) => order_confirmation::draft(order, links),
        EmailContent::PaymentReceipt(order) => payment_receipt::draft(order, links),
        EmailContent::PaymentFailed(order) => payment_failed::draft(order, links),
        EmailContent::OrderCancelled(order) => order_cancelled::draft(order, links),
        EmailContent::OrderShipped(order) => order_shipped::draft(order, links),
        EmailContent::RefundIssued(refund) => refund_issued::draft(refund, links),
        EmailContent::PasswordReset { name, token } => password_reset::draft(name, token, links),
    };
    let subject = layout::one_line(&draft.subject);
    RenderedEmail {
        to: to.to_owned(),
        html: layout::html(&subject, &draft.blocks, links),
        text: layout::text(&draft.blocks, links),
        subject,
        trace_id: None,
        request_id: None,
    }
}

/// What a template returns: the subject and the body as blocks of plain text.
struct Draft<'a> {
    subject: String,
    blocks: Vec<Block<'a>>,
}

/// "Hi Ada," — or "Hi there," for a blank name.
fn greeting<'a>(name: &str) -> Block<'a> {
    let name = name.trim();
    if name.is_empty() {
        Block::Paragraph("Hi there,".to_owned())
    } else {
        Block::Paragraph(format!("Hi {name},"))
    }
}

#[cfg(test)]
mod tests;
