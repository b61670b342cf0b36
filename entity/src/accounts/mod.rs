//! Accounts: users, their passwords, refresh tokens and password resets.
//!
//! Layout:
//! - this module: [`Role`] and the parsed input types [`Email`] and
//!   [`DisplayName`] (plus [`Password`]); account functions accept only these.
//! - `password`: [`Password`] and argon2id hashing, run off the async threads.
//! - `tokens`: opaque random tokens and the SHA-256 digests stored for them.
//! - `users`: [`register`], [`authenticate`], [`ensure_admin`], [`find_user`].
//! - `refresh`: [`issue_refresh_token`], [`rotate_refresh_token`], [`revoke_refresh_token`].
//! - `reset`: [`request_password_reset`], [`mint_reset_token`] (at send
//!   time), [`reset_password`]; why the token is minted when its email is
//!   sent is written there.
//!
//! The rules:
//! - An email belongs to one account, compared case-insensitively: [`Email`]
//!   lower-cases, and a unique index on `lower(email)` decides races (a
//!   duplicate is [`DomainError::Conflict`], never a second row).
//! - Passwords are stored only as argon2id hashes (PHC strings). Signing in
//!   with an unknown email costs the same hash verification as a wrong
//!   password, and both fail with the same error, so neither the answer nor
//!   its timing says which emails have accounts.
//! - Refresh tokens and password reset tokens are 32 random bytes, handed out
//!   once in base64url and stored only as their SHA-256 hex digest: a leaked
//!   table cannot be replayed. A reset token is made by the worker as it
//!   sends the email, so no job payload, queue or dead job ever holds one. Both are single use, spent by one conditional
//!   `UPDATE … WHERE used_at IS NULL AND expires_at > now`, so two racing
//!   callers cannot both spend one token.
//! - A refresh token presented a second time means it was copied: every live
//!   refresh token of that user is revoked, and they must sign in again.
//!   That revocation comes with an error, so [`rotate_refresh_token`] runs on
//!   the pool or in a transaction committed whatever the outcome (its docs).
//! - Changing a password (reset, or `create-admin` on an existing account)
//!   revokes every refresh token of the user.
//! - Emails (welcome, password reset) are jobs written to the outbox in the
//!   caller's transaction, never sent from here.
//!
//! Functions that write more than one row expect a transaction from
//! [`crate::db::begin_write`]: they are atomic only inside one.
use std::fmt;

use crate::error::DomainError;
pub use crate::tables::users::Role;

mod password;
mod refresh;
mod reset;
pub(crate) mod tokens;
mod users;

pub use password::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, Password, PasswordHash};
pub use refresh::{
    REFRESH_TOKEN_TTL, end_all_sessions, issue_refresh_token, revoke_refresh_token, rotate_refresh_token,
    token_version,
};
pub use reset::{
    PASSWORD_RESET_TTL, check_reset_token, legacy_reset_id, mint_reset_token, request_password_reset,
    reset_password,
};
pub use users::{authenticate, ensure_admin, find_user, register};

/// An email address: trimmed, lower-cased so uniqueness is
/// case-insensitive, and a bare addr-spec (`local@domain.tld`, as
/// `lettre::Address` parses it): no display name (`x<victim@example.com>`
/// would send a stranger's mail to the victim), no quoting, no control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// # Errors
    /// [`DomainError::InvalidInput`] on the `email` field when the shape is wrong.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let email = raw.trim().to_lowercase();
        let invalid = || DomainError::invalid("email", "must look like name@example.com");
        if email.len() > 254 || email.chars().any(char::is_whitespace) {
            return Err(invalid());
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !domain.contains('@');
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(invalid());
        }
        if email.chars().any(char::is_control) || email.parse::<lettre::Address>().is_err() {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    /// An address read back from `users.email`, which only ever holds
    /// parsed addresses.
    pub(crate) fn stored(email: String) -> Self {
        Self(email)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Payloads carry an email as its plain string; decoding parses it again,
/// so a job can never hold an address the rules would refuse.
impl serde::Serialize for Email {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Email::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The most characters a display name may have.
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;

/// The name a user goes by in emails and on their account: trimmed,
/// 1..=[`MAX_DISPLAY_NAME_CHARS`] characters, no control characters (it is
/// pasted into emails, where a stray newline would break the layout).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DisplayName(String);

impl DisplayName {
    /// # Errors
    /// [`DomainError::InvalidInput`] on the `name` field when it is empty after
    /// trimming, too long, or holds control characters.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let name = raw.trim();
        let length = name.chars().count();
        if length == 0 || length > MAX_DISPLAY_NAME_CHARS {
            return Err(DomainError::invalid(
                "name",
                format!("must be 1 to {MAX_DISPLAY_NAME_CHARS} characters"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "name",
                "must not contain control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{DisplayName, Email};

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").expect("valid").as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@@example.com",
            "ada@.com",
            "ada@example..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn only_a_bare_address_is_an_email_no_display_name_quoting_or_control_characters() {
        for bad in [
            "x<victim@example.com>",
            "<victim@example.com>",
            "Victim<victim@example.com>",
            "\"a b\"@example.com",
            "a\u{7}@example.com",
            "ada@exa\u{0}mple.com",
            "ada(comment)@example.com",
            "a,b@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} must be rejected");
        }
        for good in ["ada.lovelace+shop@example.co.uk", "o'brien@example.ie"] {
            assert!(Email::parse(good).is_ok(), "{good:?} is an address");
        }
    }

    #[test]
    fn display_names_are_trimmed() {
        assert_eq!(
            DisplayName::parse("  Ada Lovelace \t").expect("valid").as_str(),
            "Ada Lovelace"
        );
        let longest = "é".repeat(100);
        assert_eq!(
            DisplayName::parse(&longest).expect("100 characters fit").as_str(),
            longest
        );
    }

    #[test]
    fn empty_overlong_or_control_character_names_are_rejected() {
        for bad in ["", "   ", &"a".repeat(101), "Ada\nLovelace", "Ada\u{0}"] {
            assert!(
                matches!(
                    DisplayName::parse(bad),
                    Err(crate::DomainError::InvalidInput { field: "name", .. })
                ),
                "{bad:?} must be rejected"
            );
        }
    }
}
