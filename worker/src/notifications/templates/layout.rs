//! Blocks to HTML and plain text: the one place that writes markup, and so the
//! one place that escapes.
//!
//! The HTML is deliberately old-fashioned (inline styles, a table for the
//! order lines, no external CSS or images) because that is what mail clients
//! render consistently.
use std::fmt::Write as _;

use entity::orders::OrderStatus;

use super::{Breakdown, Links, OrderSummary, SHOP_NAME};

/// A piece of an email body. Every string is plain text, never markup.
pub(super) enum Block<'a> {
    Heading(String),
    Paragraph(String),
    /// A call to action; the text part shows the URL in full.
    Button {
        label: &'static str,
        url: String,
    },
    /// The order number, status, lines, money and where it ships.
    Order(&'a OrderSummary),
    /// Small print under the main content.
    Note(String),
}

const MUTED: &str = "color:#78716c;font-size:13px";

/// The HTML part: a complete document around the blocks.
pub(super) fn html(subject: &str, blocks: &[Block<'_>], links: &Links) -> String {
    let mut out = String::with_capacity(2048);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(out, "<title>{}</title>\n</head>", escape(subject));
    out.push_str(
        "<body style=\"margin:0;padding:24px;background:#f5f5f4;color:#1c1917;\
         font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;line-height:1.5\">\n\
         <div style=\"max-width:560px;margin:0 auto;background:#ffffff;border-radius:8px;padding:32px\">\n",
    );
    for block in blocks {
        html_block(&mut out, block);
    }
    let home = links.home();
    let _ = writeln!(
        out,
        "<p style=\"margin:32px 0 0;{MUTED}\">{} &middot; <a href=\"{}\" style=\"color:#78716c\">{}</a></p>",
        escape(SHOP_NAME),
        escape(&home),
        escape(&home)
    );
    out.push_str("</div>\n</body>\n</html>\n");
    out
}

fn html_block(out: &mut String, block: &Block<'_>) {
    match block {
        Block::Heading(text) => {
            let _ = writeln!(
                out,
                "<h1 style=\"margin:0 0 16px;font-size:22px\">{}</h1>",
                escape(text)
            );
        }
        Block::Paragraph(text) => {
            let _ = writeln!(out, "<p style=\"margin:0 0 16px\">{}</p>", escape(text));
        }
        Block::Button { label, url } => {
            let url = escape(url);
            let _ = writeln!(
                out,
                "<p style=\"margin:24px 0\"><a href=\"{url}\" style=\"display:inline-block;\
                 background:#1c1917;color:#ffffff;text-decoration:none;padding:12px 20px;\
                 border-radius:6px\">{}</a></p>\n\
                 <p style=\"margin:0 0 16px;{MUTED}\">Or open this link: \
                 <a href=\"{url}\" style=\"color:#78716c\">{url}</a></p>",
                escape(label)
            );
        }
        Block::Order(order) => html_order(out, order),
        Block::Note(text) => {
            let _ = writeln!(out, "<p style=\"margin:0 0 16px;{MUTED}\">{}</p>", escape(text));
        }
    }
}

fn html_order(out: &mut String, order: &OrderSummary) {
    const CELL: &str = "padding:6px 0 6px 12px;border-top:1px solid #e7e5e4";
    let _ = writeln!(
        out,
        "<p style=\"margin:0 0 8px\"><strong>Order</strong> {}<br>\
         <strong>Status</strong> {}</p>",
        escape(&order.order_id.to_string()),
        escape(status_label(order.status))
    );
    out.push_str(
        "<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" \
         style=\"width:100%;border-collapse:collapse;margin:0 0 16px\">\n\
         <tr><th align=\"left\" style=\"padding:6px 0\">Item</th>\
         <th align=\"right\" style=\"padding:6px 0 6px 12px\">Qty</th>\
         <th align=\"right\" style=\"padding:6px 0 6px 12px\">Price</th>\
         <th align=\"right\" style=\"padding:6px 0 6px 12px\">Subtotal</th></tr>\n",
    );
    for line in &order.lines {
        let _ = writeln!(
            out,
            "<tr><td style=\"padding:6px 0;border-top:1px solid #e7e5e4\">{}</td>\
             <td align=\"right\" style=\"{CELL}\">{}</td>\
             <td align=\"right\" style=\"{CELL}\">{}</td>\
             <td align=\"right\" style=\"{CELL}\">{}</td></tr>",
            escape(&line.name),
            line.quantity,
            escape(&line.unit_price.to_string()),
            escape(&line.subtotal.to_string())
        );
    }
    for (label, amount) in breakdown_rows(order.breakdown.as_ref()) {
        let _ = writeln!(
            out,
            "<tr><td colspan=\"3\" align=\"right\" style=\"padding:4px 0\">{}</td>\
             <td align=\"right\" style=\"padding:4px 0 4px 12px\">{}</td></tr>",
            escape(&label),
            escape(&amount)
        );
    }
    let _ = writeln!(
        out,
        "<tr><td colspan=\"3\" align=\"right\" style=\"padding:8px 0;border-top:2px solid #1c1917\">\
         <strong>Total</strong></td>\
         <td align=\"right\" style=\"padding:8px 0 8px 12px;border-top:2px solid #1c1917\">\
         <strong>{}</strong></td></tr>\n</table>",
        escape(&order.total.to_string())
    );
    if let Some(lines) = &order.ship_to {
        let lines: Vec<String> = lines.iter().map(|line| escape(line)).collect();
        let _ = writeln!(
            out,
            "<p style=\"margin:0 0 16px\"><strong>Ships to</strong><br>{}</p>",
            lines.join("<br>")
        );
    }
}

/// The rows between the lines and the total: subtotal, discount (with its
/// code), shipping (with its method) and tax, as label and amount.
fn breakdown_rows(breakdown: Option<&Breakdown>) -> Vec<(String, String)> {
    let Some(b) = breakdown else {
        return Vec::new();
    };
    let mut rows = vec![("Subtotal".to_owned(), b.subtotal.to_string())];
    if b.discount.amount_minor != 0 {
        let label = b
            .discount_code
            .as_ref()
            .map_or_else(|| "Discount".to_owned(), |code| format!("Discount ({code})"));
        rows.push((label, format!("-{}", b.discount)));
    }
    let shipping = b
        .shipping_method
        .as_ref()
        .map_or_else(|| "Shipping".to_owned(), |method| format!("Shipping ({method})"));
    rows.push((shipping, b.shipping.to_string()));
    let tax = if b.tax_included { "Tax included" } else { "Tax" };
    rows.push((tax.to_owned(), b.tax.to_string()));
    rows
}

/// The plain-text part: the same blocks, separated by blank lines.
pub(super) fn text(blocks: &[Block<'_>], links: &Links) -> String {
    let mut parts: Vec<String> = blocks.iter().map(text_block).collect();
    parts.push(format!("-- \n{SHOP_NAME}\n{}", links.home()));
    let mut out = parts.join("\n\n");
    out.push('\n');
    out
}

fn text_block(block: &Block<'_>) -> String {
    match block {
        Block::Heading(text) | Block::Paragraph(text) | Block::Note(text) => text.clone(),
        Block::Button { label, url } => format!("{label}: {url}"),
        Block::Order(order) => {
            let mut out = format!(
                "Order {}\nStatus: {}\n",
                order.order_id,
                status_label(order.status)
            );
            for line in &order.lines {
                let _ = write!(
                    out,
                    "\n  {} × {} — {} each — {}",
                    line.quantity, line.name, line.unit_price, line.subtotal
                );
            }
            out.push('\n');
            for (label, amount) in breakdown_rows(order.breakdown.as_ref()) {
                let _ = write!(out, "\n  {label}: {amount}");
            }
            let _ = write!(out, "\n  Total: {}", order.total);
            if let Some(lines) = &order.ship_to {
                let _ = write!(out, "\n\nShips to:\n  {}", lines.join("\n  "));
            }
            out
        }
    }
}

/// How a customer reads an order status.
pub(super) fn status_label(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::PendingPayment => "Awaiting payment",
        OrderStatus::Paid => "Paid",
        OrderStatus::Fulfilled => "Fulfilled",
        OrderStatus::PaymentFailed => "Payment failed",
        OrderStatus::Cancelled => "Cancelled",
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so the
/// value is safe inside a query string.
pub(super) fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A header-safe single line: control characters (CR, LF, tabs…) become
/// spaces and runs of whitespace collapse, so user text cannot add headers.
pub(crate) fn one_line(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}
