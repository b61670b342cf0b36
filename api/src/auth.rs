//! Who is calling: JWT access tokens (HS256, 15 minutes, signed with
//! `JWT_SECRET`) in `Authorization: Bearer …`, turned into a [`Viewer`] per
//! request. A missing token makes an anonymous viewer; a bad or expired one
//! makes every field that needs a user answer UNAUTHENTICATED.
use async_graphql::Context;
use chrono::Utc;
use entity::accounts::Role;
use entity::actor::Actor;
use entity::ids::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::errors::{client_error, code};

/// How long an access token is valid.
pub const ACCESS_TOKEN_TTL: chrono::Duration = chrono::Duration::minutes(15);

/// The id of one HTTP request, logged with everything it causes.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: UserId,
    role: Role,
    iat: i64,
    exp: i64,
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
    pub fn issue(&self, actor: Actor) -> Result<String, jsonwebtoken::errors::Error> {
        let now = Utc::now();
        let claims = Claims {
            sub: actor.user_id,
            role: actor.role,
            iat: now.timestamp(),
            exp: (now + ACCESS_TOKEN_TTL).timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The viewer an `Authorization` header value stands for.
    #[must_use]
    pub fn viewer(&self, authorization: Option<&str>) -> Viewer {
        let Some(header) = authorization else {
            return Viewer::Anonymous;
        };
        let Some(token) = header.strip_prefix("Bearer ").map(str::trim) else {
            return Viewer::Invalid;
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation) {
            Ok(data) => Viewer::User(Actor {
                user_id: data.claims.sub,
                role: data.claims.role,
            }),
            Err(_) => Viewer::Invalid,
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
        let token = keys.issue(actor).expect("sign");
        assert_eq!(keys.viewer(Some(&format!("Bearer {token}"))), Viewer::User(actor));
        assert_eq!(keys.viewer(None), Viewer::Anonymous);
        assert_eq!(
            keys.viewer(Some(&token)),
            Viewer::Invalid,
            "the Bearer scheme is required"
        );
        let other = TokenKeys::new("another-secret-that-is-long-enough-11");
        assert_eq!(other.viewer(Some(&format!("Bearer {token}"))), Viewer::Invalid);
    }
}
