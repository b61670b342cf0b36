//! Refresh tokens: long-lived, single-use, rotated on every use.
//!
//! A row's life: issued (live) → used by one rotation, or revoked by logout,
//! a password change or theft detection, or simply expired. Only a live token
//! can be rotated or revoked.
use chrono::{TimeDelta, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait};

use super::tokens;
use crate::error::DomainError;
use crate::ids::{RefreshTokenId, UserId};
use crate::tables::{refresh_tokens, users};

/// How long a refresh token stays valid after it is issued.
pub const REFRESH_TOKEN_TTL: TimeDelta = TimeDelta::days(30);

const INVALID: &str = "invalid refresh token";

/// Issues a refresh token for `user_id`, valid for [`REFRESH_TOKEN_TTL`].
/// Returns the raw token — the only time it exists outside the client; the
/// database keeps its SHA-256.
///
/// # Errors
/// [`DomainError::Database`] when the insert fails (an unknown user breaks the
/// foreign key).
pub async fn issue_refresh_token<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
) -> Result<String, DomainError> {
    let token = tokens::generate();
    let now = Utc::now();
    refresh_tokens::ActiveModel {
        id: Set(RefreshTokenId::new()),
        user_id: Set(user_id),
        token_hash: Set(token.hash),
        expires_at: Set(now + REFRESH_TOKEN_TTL),
        used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(now),
    }
    .insert(conn)
    .await?;
    Ok(token.raw)
}

/// Spends the live refresh token `raw` and issues its successor: returns the
/// user it belongs to and the new raw token.
///
/// Spending is one conditional `UPDATE … SET used_at = now WHERE token_hash = ?
/// AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now RETURNING …`,
/// so of two callers racing with the same token exactly one wins.
///
/// **Theft detection**: a token that was already used is a copy (or the
/// original, after a copy was used). Either way one of the two holders is not
/// the user, and we cannot tell which: every live refresh token of that user
/// is revoked, and the user signs in again. This includes a legitimate client
/// that sends the same token twice at once — the price of the rule.
///
/// The theft-detection revocation is written *and then* the call fails, so
/// the revocation must not be rolled back with the failure. Either:
/// - call it inside a transaction ([`crate::db::begin_write`]) and **commit
///   that transaction even when this returns [`DomainError::Unauthenticated`]**
///   (the usual "roll back on error" would leave the thief's token live); or
/// - call it on the pool connection: every statement then commits on its own,
///   and a failure between spending the old token and storing the new one
///   only costs the user a fresh sign-in.
///
/// # Errors
/// [`DomainError::Unauthenticated`] ("invalid refresh token") for an unknown,
/// used, revoked or expired token; [`DomainError::Database`] otherwise.
pub async fn rotate_refresh_token<C: ConnectionTrait>(
    conn: &C,
    raw: &str,
) -> Result<(users::Model, String), DomainError> {
    let hash = tokens::presented(raw).ok_or(DomainError::Unauthenticated(INVALID))?;
    let now = Utc::now();
    let spent = live(refresh_tokens::Entity::update_many(), now)
        .col_expr(refresh_tokens::Column::UsedAt, Expr::value(now))
        .filter(refresh_tokens::Column::TokenHash.eq(hash.as_str()))
        .exec_with_returning(conn)
        .await?;
    let Some(spent) = spent.into_iter().next() else {
        detect_reuse(conn, &hash).await?;
        return Err(DomainError::Unauthenticated(INVALID));
    };
    let user = users::Entity::find_by_id(spent.user_id)
        .one(conn)
        .await?
        .ok_or(DomainError::Unauthenticated(INVALID))?;
    let next = issue_refresh_token(conn, user.id).await?;
    Ok((user, next))
}

/// Logout: revokes the refresh token `raw`. Answers whether a live token was
/// revoked (`false` for an unknown, used, revoked or expired one — logging out
/// twice is not an error).
///
/// # Errors
/// [`DomainError::Database`] when the update fails.
pub async fn revoke_refresh_token<C: ConnectionTrait>(conn: &C, raw: &str) -> Result<bool, DomainError> {
    let Some(hash) = tokens::presented(raw) else {
        return Ok(false);
    };
    let now = Utc::now();
    let revoked = live(refresh_tokens::Entity::update_many(), now)
        .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(now))
        .filter(refresh_tokens::Column::TokenHash.eq(hash))
        .exec(conn)
        .await?;
    Ok(revoked.rows_affected > 0)
}

/// Revokes every live refresh token of `user_id`; returns how many.
pub(super) async fn revoke_all<C: ConnectionTrait>(conn: &C, user_id: UserId) -> Result<u64, DomainError> {
    let now = Utc::now();
    let revoked = live(refresh_tokens::Entity::update_many(), now)
        .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(now))
        .filter(refresh_tokens::Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    // And the access tokens: they carry the version they were issued at.
    users::Entity::update_many()
        .col_expr(
            users::Column::TokenVersion,
            Expr::col(users::Column::TokenVersion).add(1),
        )
        .filter(users::Column::Id.eq(user_id))
        .exec(conn)
        .await?;
    Ok(revoked.rows_affected)
}

/// Ends every session of the user: refresh tokens revoked, access tokens
/// dead at the api's next check (their version is behind). Returns how many
/// refresh tokens were live.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn end_all_sessions<C: ConnectionTrait>(conn: &C, user_id: UserId) -> Result<u64, DomainError> {
    revoke_all(conn, user_id).await
}

/// The user's current token version (see `users.token_version`); `None`
/// when the user no longer exists.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn token_version<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
) -> Result<Option<i32>, DomainError> {
    use sea_orm::QuerySelect;
    Ok(users::Entity::find_by_id(user_id)
        .select_only()
        .column(users::Column::TokenVersion)
        .into_tuple::<i32>()
        .one(conn)
        .await?)
}

/// Restricts an update to tokens that are still live at `now`.
fn live(
    update: sea_orm::UpdateMany<refresh_tokens::Entity>,
    now: chrono::DateTime<Utc>,
) -> sea_orm::UpdateMany<refresh_tokens::Entity> {
    update
        .filter(refresh_tokens::Column::UsedAt.is_null())
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .filter(refresh_tokens::Column::ExpiresAt.gt(now))
}

/// After a failed rotation: when the token exists and was already used,
/// revoke its user's live tokens (see [`rotate_refresh_token`]).
async fn detect_reuse<C: ConnectionTrait>(conn: &C, hash: &str) -> Result<(), DomainError> {
    let found = refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::TokenHash.eq(hash))
        .one(conn)
        .await?;
    if let Some(token) = found.filter(|t| t.used_at.is_some()) {
        let revoked = revoke_all(conn, token.user_id).await?;
        tracing::warn!(
            user_id = %token.user_id,
            revoked,
            "a used refresh token was presented again; revoked the user's refresh tokens"
        );
    }
    Ok(())
}
