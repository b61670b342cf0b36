//! Welcome: sent once, right after registration.
use super::{Block, Draft, Links, SHOP_NAME, greeting};

pub(super) fn draft<'a>(name: &str, links: &Links) -> Draft<'a> {
    // The subject leaves the name out: the address is not verified yet, and a
    // name is free text, so it must not be able to headline an email to a stranger.
    Draft {
        subject: format!("Welcome to {SHOP_NAME}"),
        blocks: vec![
            Block::Heading(format!("Welcome to {SHOP_NAME}!")),
            greeting(name),
            Block::Paragraph(
                "Thanks for signing up. Your account is ready: browse the shop, place orders \
                 and follow each one from your account."
                    .to_owned(),
            ),
            Block::Button {
                label: "Start shopping",
                url: links.home(),
            },
            Block::Note(
                "You are receiving this email because an account was created with this address. \
                 If that wasn't you, you can ignore it."
                    .to_owned(),
            ),
        ],
    }
}
