//! Password reset by a single-use token sent by email.
use chrono::{TimeDelta, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;

use super::users::find_by_email;
use super::{Email, PasswordHash, refresh, tokens};
use crate::error::DomainError;
use crate::ids::{PasswordResetId, UserId};
use crate::jobs::{EmailMessage, SendEmail};
use crate::outbox;
use crate::tables::{password_resets, users};

/// How long a password reset token stays valid after it is requested.
pub const PASSWORD_RESET_TTL: TimeDelta = TimeDelta::hours(1);

/// Starts a password reset: when `email` has an account, stores a new reset
/// token (hashed, valid for [`PASSWORD_RESET_TTL`]) and writes the email that
/// carries it to the outbox, deduplicated by `password-reset:<reset id>`.
/// When it has none, does nothing and still answers `Ok`, so the answer does
/// not reveal which emails exist. Earlier tokens stay valid until they expire
/// or one of them is used.
///
/// Call inside a transaction ([`crate::db::begin_write`]): the reset row and
/// its outbox row must commit together.
///
/// # Errors
/// [`DomainError::Database`] when a query or insert fails.
pub async fn request_password_reset<C: ConnectionTrait>(conn: &C, email: &Email) -> Result<(), DomainError> {
    let Some(user) = find_by_email(conn, email).await? else {
        return Ok(());
    };
    let token = tokens::generate();
    let now = Utc::now();
    let reset = password_resets::ActiveModel {
        id: Set(PasswordResetId::new()),
        user_id: Set(user.id),
        token_hash: Set(token.hash),
        expires_at: Set(now + PASSWORD_RESET_TTL),
        used_at: Set(None),
        created_at: Set(now),
    }
    .insert(conn)
    .await?;
    outbox::enqueue(
        conn,
        &SendEmail {
            dedupe_key: format!("password-reset:{}", reset.id),
            to: super::Email::stored(user.email),
            message: EmailMessage::PasswordReset {
                name: user.name,
                token: token.raw,
            },
            request_id: None,
        },
    )
    .await?;
    Ok(())
}

/// The account of `raw_token` when it is a reset token that can still be used: a read,
/// before the caller hashes the new password (outside any transaction), so
/// a bad token costs no argon2 work. [`reset_password`] checks again, by
/// spending it.
///
/// # Errors
/// [`DomainError::InvalidInput`] on the `token` field for an unknown, used or
/// expired token; [`DomainError::Database`] otherwise.
pub async fn check_reset_token<C: ConnectionTrait>(conn: &C, raw_token: &str) -> Result<UserId, DomainError> {
    let invalid = || DomainError::invalid("token", "invalid or expired reset token");
    let hash = tokens::presented(raw_token).ok_or_else(invalid)?;
    let usable = password_resets::Entity::find()
        .filter(password_resets::Column::TokenHash.eq(hash))
        .filter(password_resets::Column::UsedAt.is_null())
        .filter(password_resets::Column::ExpiresAt.gt(Utc::now()))
        .one(conn)
        .await?;
    usable.map(|reset| reset.user_id).ok_or_else(invalid)
}

/// Completes a password reset: spends the token `raw_token` (one conditional
/// `UPDATE … WHERE used_at IS NULL AND expires_at > now`, so it works once),
/// sets `new_password`, revokes every refresh token of the user (whoever held
/// the old password is signed out), and spends the user's other outstanding
/// reset tokens.
///
/// Call inside a transaction ([`crate::db::begin_write`]) and roll it back on
/// error: the token must not be spent unless the password changed with it.
///
/// # Errors
/// [`DomainError::InvalidInput`] on the `token` field for an unknown, used or
/// expired token; [`DomainError::Database`] otherwise.
pub async fn reset_password<C: ConnectionTrait>(
    conn: &C,
    raw_token: &str,
    new_password: PasswordHash,
) -> Result<(), DomainError> {
    let invalid = || DomainError::invalid("token", "invalid or expired reset token");
    let hash = tokens::presented(raw_token).ok_or_else(invalid)?;
    let now = Utc::now();
    let spent = unused(password_resets::Entity::update_many(), now)
        .col_expr(password_resets::Column::UsedAt, Expr::value(now))
        .filter(password_resets::Column::TokenHash.eq(hash))
        .exec_with_returning(conn)
        .await?;
    let user_id = spent.into_iter().next().ok_or_else(invalid)?.user_id;

    users::Entity::update_many()
        .col_expr(
            users::Column::PasswordHash,
            Expr::value(new_password.into_inner()),
        )
        .col_expr(users::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(users::Column::Id.eq(user_id))
        .exec(conn)
        .await?;
    refresh::revoke_all(conn, user_id).await?;
    unused(password_resets::Entity::update_many(), now)
        .col_expr(password_resets::Column::UsedAt, Expr::value(now))
        .filter(password_resets::Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Restricts an update to reset tokens that can still be used at `now`.
fn unused(
    update: sea_orm::UpdateMany<password_resets::Entity>,
    now: chrono::DateTime<Utc>,
) -> sea_orm::UpdateMany<password_resets::Entity> {
    update
        .filter(password_resets::Column::UsedAt.is_null())
        .filter(password_resets::Column::ExpiresAt.gt(now))
}
