//! Passwords: the parsed [`Password`] and argon2id hashing.
//!
//! Hashing is deliberately slow (argon2's default cost: 19 MiB, 2 passes), so
//! it runs on tokio's blocking pool rather than stalling an async worker
//! thread that other requests share.
use std::fmt;

use argon2::Argon2;
use argon2::password_hash::{self, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use sea_orm::DbErr;

use crate::error::DomainError;

/// The fewest characters a new password may have.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The most characters a password may have; also bounds the work one sign-in
/// attempt can cause.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A hash of a password nobody knows, with the same parameters as real ones:
/// verifying against it when an email has no account costs what verifying a
/// real hash costs, so sign-in timing does not reveal which emails exist.
/// (A unit test checks it still matches `Argon2::default()`.)
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c3RvcmVmcm9udC1kdW1teQ$m64sJdToNf5RlXE33SZZXEhurlRd9HCIYOMBgyr9hQ4";

/// A new password that meets the policy: [`MIN_PASSWORD_CHARS`] to
/// [`MAX_PASSWORD_CHARS`] characters, taken as typed (not trimmed). Its
/// `Debug` output hides it, so it cannot leak into a log line.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// # Errors
    /// [`DomainError::InvalidInput`] on the `password` field when it is too
    /// short or too long.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let length = raw.chars().count();
        if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&length) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::invalid(
                "password",
                format!("must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"),
            ))
        }
    }

    /// The argon2id hash of this password with a fresh random salt. Slow by
    /// design (tens of milliseconds of CPU): call it *before* a write
    /// transaction, never inside one, where it would hold the SQLite writer.
    ///
    /// # Errors
    /// [`DomainError::Internal`] when the hasher fails.
    pub async fn hash(&self) -> Result<PasswordHash, DomainError> {
        let password = self.0.clone();
        run_blocking(move || {
            let mut salt = [0_u8; 16];
            rand::rng().fill_bytes(&mut salt);
            let salt = SaltString::encode_b64(&salt).map_err(|e| hashing_failed(&e))?;
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| PasswordHash(hash.to_string()))
                .map_err(|e| hashing_failed(&e))
        })
        .await
    }
}

/// An argon2id PHC string, ready to store; `Debug` hides it.
#[derive(Clone)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub(super) fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Whether `password` matches `stored` (a PHC string). With `stored` of
/// `None` it verifies against [`DUMMY_HASH`] and answers `false`, taking as
/// long as a real check.
///
/// A stored hash that does not parse never matches; it is logged, since it
/// means a row was written by something other than this module.
pub(super) async fn verify(password: &str, stored: Option<String>) -> Result<bool, DomainError> {
    let password = password.to_owned();
    run_blocking(move || {
        let known = stored.is_some();
        let stored = stored.as_deref().unwrap_or(DUMMY_HASH);
        let parsed = match password_hash::PasswordHash::new(stored) {
            Ok(parsed) => parsed,
            Err(error) => {
                tracing::error!(%error, "a stored password hash does not parse");
                return Ok(false);
            }
        };
        match Argon2::default().verify_password(password.as_bytes(), &parsed) {
            Ok(()) => Ok(known),
            Err(password_hash::Error::Password) => Ok(false),
            Err(error) => {
                tracing::error!(%error, "a stored password hash cannot be verified");
                Ok(false)
            }
        }
    })
    .await
}

async fn run_blocking<T, F>(work: F) -> Result<T, DomainError>
where
    F: FnOnce() -> Result<T, DomainError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        // Only when the runtime is shutting down.
        Err(join) => Err(unexpected(&format!("password hashing was cancelled: {join}"))),
    }
}

fn hashing_failed(error: &password_hash::Error) -> DomainError {
    unexpected(&format!("password hashing failed: {error}"))
}

/// [`DomainError`] has no variant for "unexpected, not the database", so a
/// failure of the hashing machinery travels as [`DomainError::Database`]: the
/// API treats it the same way (logged, INTERNAL to the client).
fn unexpected(message: &str) -> DomainError {
    DomainError::Database(DbErr::Custom(message.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_of_ten_to_128_characters_are_accepted_as_typed() {
        assert_eq!(Password::parse("  ten chars").expect("valid").0, "  ten chars");
        assert!(
            Password::parse(&"é".repeat(10)).is_ok(),
            "counts characters, not bytes"
        );
        assert!(Password::parse(&"x".repeat(128)).is_ok());
    }

    #[test]
    fn too_short_or_too_long_passwords_are_rejected() {
        for bad in [String::new(), "x".repeat(9), "x".repeat(129)] {
            assert!(
                matches!(
                    Password::parse(&bad),
                    Err(DomainError::InvalidInput {
                        field: "password",
                        ..
                    })
                ),
                "{} characters must be rejected",
                bad.len()
            );
        }
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let password = Password::parse("correct horse battery staple").expect("valid");
        let shown = format!("{password:?}");
        assert!(!shown.contains("horse"), "{shown}");
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_hash_costs() {
        let dummy = password_hash::PasswordHash::new(DUMMY_HASH).expect("parses");
        let params = argon2::Params::try_from(&dummy).expect("argon2 parameters");
        let defaults = argon2::Params::default();
        assert_eq!(dummy.algorithm, argon2::Algorithm::Argon2id.ident());
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (defaults.m_cost(), defaults.t_cost(), defaults.p_cost())
        );
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let password = Password::parse("correct horse battery staple").expect("valid");
        let hash = password.hash().await.expect("hash").into_inner();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(
            verify("correct horse battery staple", Some(hash.clone()))
                .await
                .expect("verify")
        );
        assert!(
            !verify("wrong horse battery staple", Some(hash))
                .await
                .expect("verify")
        );
        assert!(
            !verify("correct horse battery staple", None)
                .await
                .expect("verify")
        );
        assert!(
            !verify("anything", Some("not-a-hash".into()))
                .await
                .expect("verify")
        );
    }
}
