//! Opaque tokens (refresh and password reset): 32 random bytes handed out
//! once as base64url, stored only as the SHA-256 hex digest of that text.
//!
//! A plain SHA-256 suffices here (unlike passwords): the token carries 256
//! bits of randomness, so there is nothing to guess, and a fast digest lets
//! the lookup be an indexed equality on `token_hash`.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Random bytes per token.
const TOKEN_BYTES: usize = 32;

/// Longer than any token this module hands out (43 characters); anything
/// longer is refused before it is hashed or looked up.
const MAX_TOKEN_CHARS: usize = 128;

/// A new token: the raw text for the user, and the digest to store.
pub(crate) struct NewToken {
    pub raw: String,
    pub hash: String,
}

pub(crate) fn generate() -> NewToken {
    let mut bytes = [0_u8; TOKEN_BYTES];
    // `ThreadRng` is a CSPRNG seeded from the operating system.
    rand::rng().fill_bytes(&mut bytes);
    let raw = URL_SAFE_NO_PAD.encode(bytes);
    let hash = digest(&raw);
    NewToken { raw, hash }
}

/// The stored form of a presented token, or `None` when it cannot be one of
/// ours (so the caller answers "invalid" without touching the database).
pub(super) fn presented(raw: &str) -> Option<String> {
    let raw = raw.trim();
    (!raw.is_empty() && raw.len() <= MAX_TOKEN_CHARS).then(|| digest(raw))
}

pub(crate) fn digest(raw: &str) -> String {
    format!("{:x}", Sha256::digest(raw.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_base64url_characters_stored_as_their_sha256_hex() {
        let token = generate();
        assert_eq!(token.raw.len(), 43);
        assert!(
            token
                .raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{}",
            token.raw
        );
        assert_eq!(token.hash.len(), 64);
        assert_eq!(presented(&token.raw), Some(token.hash.clone()));
        assert_ne!(token.hash, generate().hash, "every token is fresh");
    }

    #[test]
    fn the_digest_is_sha256() {
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn empty_or_oversized_tokens_are_not_looked_up() {
        assert_eq!(presented(""), None);
        assert_eq!(presented("   "), None);
        assert_eq!(presented(&"a".repeat(129)), None);
    }
}
