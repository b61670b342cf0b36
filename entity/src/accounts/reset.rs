//! Password reset by a single-use token sent by email.
//!
//! # The token exists only in the email and as a hash
//!
//! [`request_password_reset`] writes the reset row and an outbox job that
//! names the reset by id; no token exists yet (the row's `token_hash` is the
//! digest of a random token that nobody is given). The worker, having
//! claimed the email's delivery, calls [`mint_reset_token`]: one conditional
//! `UPDATE` stores the hash of a fresh token on the still-usable reset, and
//! the raw token goes into the email and nowhere else — not the outbox, the
//! queue, `dead_jobs` or a log line.
//!
//! Minting at send time rather than carrying the token encrypted: nothing
//! to configure, no key to leak or rotate, and a retry is safe by design.
//! An email job that runs twice (a worker died after SMTP accepted the mail
//! but before the delivery was marked sent: the one duplicate the
//! notifications rules allow) mints again, which overwrites the hash, so the
//! first email's token stops working and only the newest email's works —
//! never two working tokens for one reset. A redelivered job whose email was
//! sent mints nothing (the delivery claim says "already sent").
//!
//! The reset keeps the expiry set when it was requested
//! ([`PASSWORD_RESET_TTL`]); an email that could only be sent after it (or
//! after the user reset the password another way) is not sent:
//! [`mint_reset_token`] answers `None` and the worker fails the job.
//!
//! Jobs written by builds before this one carry the raw token
//! (`EmailMessage::LegacyPasswordReset`); they drain: [`legacy_reset_id`]
//! finds their reset by the token's hash, and the worker rewrites the
//! payload in the new shape before minting.
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
/// (valid for [`PASSWORD_RESET_TTL`], no working token until its email is
/// sent: see the module docs) and writes the email that will carry its token
/// to the outbox, deduplicated by `password-reset:<reset id>`.
/// When it has none, does nothing and still answers `Ok`, so the answer does
/// not reveal which emails exist. Earlier tokens stay valid until they expire
/// or one of them is used.
///
/// Call inside a transaction ([`crate::db::begin_write`]): the reset row and
/// its outbox row must commit together.
///
/// # Errors
/// [`DomainError::Database`] when a query or insert fails.
pub async fn request_password_reset<C: ConnectionTrait>(
    conn: &C,
    email: &Email,
    request_id: Option<String>,
) -> Result<(), DomainError> {
    let Some(user) = find_by_email(conn, email).await? else {
        return Ok(());
    };
    // A placeholder: the digest of a token nobody is given.
    let unminted = tokens::generate().hash;
    let now = Utc::now();
    let reset = password_resets::ActiveModel {
        id: Set(PasswordResetId::new()),
        user_id: Set(user.id),
        token_hash: Set(unminted),
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
                reset_id: reset.id,
            },
            request_id,
        },
    )
    .await?;
    Ok(())
}

/// Gives the reset `reset_id` a fresh token and returns it (raw, for the
/// email), or `None` when the reset is used, expired or gone. Any token
/// minted for it before stops working: one `UPDATE` of `token_hash`, guarded
/// by `used_at IS NULL AND expires_at > now`.
///
/// Call after claiming the email's delivery (so two senders never mint for
/// one email at once) and outside any transaction that waits on SMTP.
///
/// # Errors
/// [`DomainError::Database`].
pub async fn mint_reset_token<C: ConnectionTrait>(
    conn: &C,
    reset_id: PasswordResetId,
) -> Result<Option<String>, DomainError> {
    let token = tokens::generate();
    let minted = unused(password_resets::Entity::update_many(), Utc::now())
        .col_expr(password_resets::Column::TokenHash, Expr::value(token.hash))
        .filter(password_resets::Column::Id.eq(reset_id))
        .exec(conn)
        .await?;
    Ok((minted.rows_affected == 1).then_some(token.raw))
}

/// The still-usable reset whose token is `raw_token`, for draining a legacy
/// payload that carries the raw token (see the module docs).
///
/// # Errors
/// [`DomainError::Database`].
pub async fn legacy_reset_id<C: ConnectionTrait>(
    conn: &C,
    raw_token: &str,
) -> Result<Option<PasswordResetId>, DomainError> {
    let Some(hash) = tokens::presented(raw_token) else {
        return Ok(None);
    };
    Ok(usable(hash).one(conn).await?.map(|reset| reset.id))
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
    let found = usable(hash).one(conn).await?;
    found.map(|reset| reset.user_id).ok_or_else(invalid)
}

/// The unused, unexpired reset whose token hashes to `hash`.
fn usable(hash: String) -> sea_orm::Select<password_resets::Entity> {
    password_resets::Entity::find()
        .filter(password_resets::Column::TokenHash.eq(hash))
        .filter(password_resets::Column::UsedAt.is_null())
        .filter(password_resets::Column::ExpiresAt.gt(Utc::now()))
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
