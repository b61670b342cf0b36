//! User accounts: registering, signing in, the `create-admin` command, lookup.
use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, Func};

use super::password::{self, MAX_PASSWORD_CHARS};
use super::{DisplayName, Email, Password, PasswordHash, Role, refresh};
use crate::error::DomainError;
use crate::ids::UserId;
use crate::jobs::{EmailMessage, SendEmail};
use crate::outbox;
use crate::tables::users;

const BAD_CREDENTIALS: &str = "invalid email or password";

/// Creates an account and writes its welcome email to the outbox.
///
/// Call inside a transaction ([`crate::db::begin_write`]): the user row and
/// the outbox row must commit together. Roll it back on any error — on
/// PostgreSQL a refused insert leaves the transaction unusable anyway.
///
/// The password is hashed inside the call (argon2id, on the blocking pool).
///
/// # Errors
/// [`DomainError::Conflict`] when the email already has an account (in any
/// letter case; decided by the unique index, so two racing registrations
/// cannot both succeed), [`DomainError::Database`] otherwise.
pub async fn register<C: ConnectionTrait>(
    conn: &C,
    email: &Email,
    password_hash: PasswordHash,
    name: &DisplayName,
    role: Role,
    request_id: Option<String>,
) -> Result<users::Model, DomainError> {
    let user = insert(conn, email, password_hash.into_inner(), name, role).await?;
    outbox::enqueue(
        conn,
        &SendEmail {
            dedupe_key: format!("welcome:{}", user.id),
            to: super::Email::stored(user.email.clone()),
            message: EmailMessage::Welcome {
                name: user.name.clone(),
            },
            request_id,
        },
    )
    .await?;
    Ok(user)
}

/// The user whose email and password these are.
///
/// `password` is the raw text as typed: the policy of [`Password`] applies to
/// new passwords, not to signing in. An unknown email still costs one argon2
/// verification (against a dummy hash), so the time taken does not reveal
/// whether the account exists.
///
/// # Errors
/// [`DomainError::Unauthenticated`] with the same message for an unknown
/// email and a wrong password, [`DomainError::Database`] otherwise.
pub async fn authenticate<C: ConnectionTrait>(
    conn: &C,
    email: &Email,
    password: &str,
) -> Result<users::Model, DomainError> {
    // No stored password is this long; refusing early bounds the work one
    // attempt causes and says nothing about the email.
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(DomainError::Unauthenticated(BAD_CREDENTIALS));
    }
    let user = find_by_email(conn, email).await?;
    // Verify first, whether or not the account exists (see above).
    let matches = password::verify(password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    match user {
        Some(user) if matches => Ok(user),
        _ => Err(DomainError::Unauthenticated(BAD_CREDENTIALS)),
    }
}

/// For the `create-admin` command: makes `email` an admin with `password`.
/// A new email gets a new ADMIN account named `name` (no welcome email: the
/// operator made it). An existing account is promoted to ADMIN and its
/// password replaced — its name is kept, and its refresh tokens are revoked,
/// as with any password change.
///
/// Call inside a transaction ([`crate::db::begin_write`]).
///
/// # Errors
/// [`DomainError::Conflict`] when another process creates the same email at
/// the same moment, [`DomainError::Database`] otherwise.
pub async fn ensure_admin<C: ConnectionTrait>(
    conn: &C,
    email: &Email,
    password: &Password,
    name: &DisplayName,
) -> Result<users::Model, DomainError> {
    let password_hash = password.hash().await?.into_inner();
    let promoted = users::Entity::update_many()
        .col_expr(users::Column::Role, Expr::value(Role::Admin))
        .col_expr(users::Column::PasswordHash, Expr::value(password_hash.clone()))
        .col_expr(users::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(email_matches(email))
        .exec_with_returning(conn)
        .await?;
    if let Some(user) = promoted.into_iter().next() {
        refresh::revoke_all(conn, user.id).await?;
        return Ok(user);
    }
    insert(conn, email, password_hash, name, Role::Admin).await
}

/// The user with this id, if any.
///
/// # Errors
/// [`DomainError::Database`] when the query fails.
pub async fn find_user<C: ConnectionTrait>(
    conn: &C,
    id: UserId,
) -> Result<Option<users::Model>, DomainError> {
    Ok(users::Entity::find_by_id(id).one(conn).await?)
}

pub(super) async fn find_by_email<C: ConnectionTrait>(
    conn: &C,
    email: &Email,
) -> Result<Option<users::Model>, DomainError> {
    Ok(users::Entity::find()
        .filter(email_matches(email))
        .one(conn)
        .await?)
}

/// `lower(email) = ?`: matches the unique index, and finds rows however
/// they were cased when written.
fn email_matches(email: &Email) -> Expr {
    Func::lower(Expr::col(users::Column::Email)).eq(email.as_str())
}

async fn insert<C: ConnectionTrait>(
    conn: &C,
    email: &Email,
    password_hash: String,
    name: &DisplayName,
    role: Role,
) -> Result<users::Model, DomainError> {
    let now = Utc::now();
    let row = users::ActiveModel {
        id: Set(UserId::new()),
        email: Set(email.as_str().to_owned()),
        name: Set(name.as_str().to_owned()),
        password_hash: Set(password_hash),
        role: Set(role),
        token_version: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    };
    row.insert(conn)
        .await
        .map_err(|err| DomainError::conflict_if_unique(err, "email already registered"))
}
