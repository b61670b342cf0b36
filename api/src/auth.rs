//! Who is calling: JWT access tokens (HS256, 15 minutes, signed with
//! `JWT_SECRET`, issuer and audience checked) in `Authorization: Bearer …`,
//! turned into a [`Viewer`] per request. A missing token makes an anonymous
//! viewer; a bad or expired one makes every field that needs a user answer
//! UNAUTHENTICATED.
//!
//! A token also carries the user's token version (`users.token_version`),
//! which signing out everywhere, a password reset and a stolen refresh
//! token move on: [`Sessions`] compares it on each request, from a cache
//! re-read at most every [`SESSION_CHECK_EVERY`], so the common path adds
//! no SQL and a dead session's tokens fail within seconds on every api
//! instance (at once on the one that ended it).
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_graphql::Context;
use chrono::Utc;
use entity::accounts::Role;
use entity::actor::Actor;
use entity::ids::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};

use crate::errors::{client_error, code};

/// How long an access token is valid.
pub const ACCESS_TOKEN_TTL: chrono::Duration = chrono::Duration::minutes(15);

/// The id of one HTTP request, logged with everything it causes.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// How long a user's token version is trusted from the cache.
pub const SESSION_CHECK_EVERY: Duration = Duration::from_secs(2);
const ISSUER: &str = "storefront";
const AUDIENCE: &str = "storefront-api";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: UserId,
    role: Role,
    /// The user's token version when the token was issued.
    ver: i32,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// What a token says, before the session check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    Anonymous,
    Invalid,
    User { actor: Actor, version: i32 },
}

/// Signs and checks access tokens.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenKeys {
    #[must_use]
    pub fn new(secret: &str) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
        }
    }

    /// A fresh access token for `actor`.
    ///
    /// # Errors
    /// The signer's error (it does not fail for HS256 with a valid key).
    pub fn issue(&self, actor: Actor, version: i32) -> Result<String, jsonwebtoken::errors::Error> {
        let now = Utc::now();
        let claims = Claims {
            sub: actor.user_id,
            role: actor.role,
            ver: version,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now.timestamp(),
            exp: (now + ACCESS_TOKEN_TTL).timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// What an `Authorization` header value claims (signature, expiry,
    /// issuer and audience checked; the session is [`Sessions`]' business).
    #[must_use]
    pub fn claimed(&self, authorization: Option<&str>) -> Claimed {
        let Some(header) = authorization else {
            return Claimed::Anonymous;
        };
        let Some(token) = header.strip_prefix("Bearer ").map(str::trim) else {
            return Claimed::Invalid;
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation) {
            Ok(data) => Claimed::User {
                actor: Actor {
                    user_id: data.claims.sub,
                    role: data.claims.role,
                },
                version: data.claims.ver,
            },
            Err(_) => Claimed::Invalid,
        }
    }
}

/// The session check: is the token's version still the user's?
pub struct Sessions {
    db: DatabaseConnection,
    /// user → (token version, when read).
    versions: Mutex<HashMap<UserId, (Option<i32>, Instant)>>,
}

impl Sessions {
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            versions: Mutex::new(HashMap::new()),
        }
    }

    /// The viewer an `Authorization` header value stands for.
    pub async fn viewer(&self, keys: &TokenKeys, authorization: Option<&str>) -> Viewer {
        match keys.claimed(authorization) {
            Claimed::Anonymous => Viewer::Anonymous,
            Claimed::Invalid => Viewer::Invalid,
            Claimed::User { actor, version } => match self.current(actor.user_id).await {
                Some(current) if current == version => Viewer::User(actor),
                _ => Viewer::Invalid,
            },
        }
    }

    /// Forgets what this instance knows of `user` (after ending its sessions).
    pub fn forget(&self, user: UserId) {
        self.versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&user);
    }

    async fn current(&self, user: UserId) -> Option<i32> {
        let cached = self
            .versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&user)
            .filter(|(_, read)| read.elapsed() < SESSION_CHECK_EVERY)
            .map(|(version, _)| *version);
        if let Some(version) = cached {
            return version;
        }
        match crate::transaction::read(|| entity::accounts::token_version(&self.db, user)).await {
            Ok(version) => {
                let mut versions = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
                // Bounded: stale entries go when the map grows large.
                if versions.len() > 100_000 {
                    versions.retain(|_, (_, read)| read.elapsed() < SESSION_CHECK_EVERY);
                }
                versions.insert(user, (version, Instant::now()));
                version
            }
            Err(error) => {
                tracing::warn!(%error, "session check failed: treating the token as invalid");
                None
            }
        }
    }
}

/// Who the current request is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    Anonymous,
    /// A token was sent but is malformed, forged or expired.
    Invalid,
    User(Actor),
}

/// The signed-in user, or UNAUTHENTICATED.
///
/// # Errors
/// UNAUTHENTICATED when no valid access token came with the request.
pub fn require_user(ctx: &Context<'_>) -> async_graphql::Result<Actor> {
    match ctx.data_opt::<Viewer>() {
        Some(Viewer::User(actor)) => Ok(*actor),
        Some(Viewer::Invalid) => Err(client_error(
            code::UNAUTHENTICATED,
            "invalid or expired access token",
        )),
        _ => Err(client_error(code::UNAUTHENTICATED, "sign in first")),
    }
}

/// The signed-in admin, or UNAUTHENTICATED / FORBIDDEN.
///
/// # Errors
/// UNAUTHENTICATED without a valid token, FORBIDDEN for a customer.
pub fn require_admin(ctx: &Context<'_>) -> async_graphql::Result<Actor> {
    let actor = require_user(ctx)?;
    if actor.is_admin() {
        Ok(actor)
    } else {
        Err(client_error(code::FORBIDDEN, "admins only"))
    }
}

/// The viewer's actor when signed in, `None` when anonymous.
///
/// # Errors
/// UNAUTHENTICATED when a token was sent but is not valid.
pub fn optional_user(ctx: &Context<'_>) -> async_graphql::Result<Option<Actor>> {
    match ctx.data_opt::<Viewer>() {
        Some(Viewer::User(actor)) => Ok(Some(*actor)),
        Some(Viewer::Invalid) => Err(client_error(
            code::UNAUTHENTICATED,
            "invalid or expired access token",
        )),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_forgeries_are_rejected() {
        let keys = TokenKeys::new("a-test-secret-that-is-long-enough-000");
        let actor = Actor {
            user_id: UserId::new(),
            role: Role::Admin,
        };
        let token = keys.issue(actor, 3).expect("sign");
        assert_eq!(
            keys.claimed(Some(&format!("Bearer {token}"))),
            Claimed::User { actor, version: 3 }
        );
        assert_eq!(keys.claimed(None), Claimed::Anonymous);
        assert_eq!(
            keys.claimed(Some(&token)),
            Claimed::Invalid,
            "the Bearer scheme is required"
        );
        let other = TokenKeys::new("another-secret-that-is-long-enough-11");
        assert_eq!(other.claimed(Some(&format!("Bearer {token}"))), Claimed::Invalid);
    }
}
