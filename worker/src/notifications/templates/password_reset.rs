//! Password reset: carries the single-use token as a link to the reset form.
use entity::accounts::PASSWORD_RESET_TTL;

use super::{Block, Draft, Links, SHOP_NAME, greeting};

pub(super) fn draft<'a>(name: &str, token: &str, links: &Links) -> Draft<'a> {
    Draft {
        subject: format!("Reset your {SHOP_NAME} password"),
        blocks: vec![
            Block::Heading("Reset your password".to_owned()),
            greeting(name),
            Block::Paragraph(format!(
                "We received a request to reset the password of your {SHOP_NAME} account. \
                 Choose a new one with the link below. It works once and expires in {}.",
                describe_ttl(PASSWORD_RESET_TTL.num_minutes())
            )),
            Block::Button {
                label: "Choose a new password",
                url: links.password_reset(token),
            },
            Block::Note(
                "If you didn't ask for this, you can ignore this email: \
                 your password stays the same."
                    .to_owned(),
            ),
        ],
    }
}

/// "1 hour", "2 hours", "30 minutes": the copy follows the entity's TTL.
fn describe_ttl(minutes: i64) -> String {
    match (minutes / 60, minutes % 60) {
        (1, 0) => "1 hour".to_owned(),
        (hours, 0) => format!("{hours} hours"),
        _ if minutes == 1 => "1 minute".to_owned(),
        _ => format!("{minutes} minutes"),
    }
}

#[cfg(test)]
mod tests {
    use super::describe_ttl;

    #[test]
    fn the_expiry_reads_naturally() {
        assert_eq!(describe_ttl(60), "1 hour");
        assert_eq!(describe_ttl(120), "2 hours");
        assert_eq!(describe_ttl(30), "30 minutes");
        assert_eq!(describe_ttl(90), "90 minutes");
        assert_eq!(describe_ttl(1), "1 minute");
    }
}
