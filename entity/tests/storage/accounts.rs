//! Accounts: registration, sign-in, refresh token rotation, password reset
//! and `create-admin`, against the real tables.
//!
//! Argon2 is slow in debug builds (most of a second per hash), so each test
//! hashes only the few passwords it is about; users that only need to exist
//! come from `insert_user`, which stores a fake hash.
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use entity::DomainError;
use entity::accounts::{
    DisplayName, Email, PASSWORD_RESET_TTL, Password, REFRESH_TOKEN_TTL, Role, authenticate, ensure_admin,
    find_user, issue_refresh_token, legacy_reset_id, mint_reset_token, register, request_password_reset,
    reset_password, revoke_refresh_token, rotate_refresh_token,
};
use entity::db::begin_write;
use entity::ids::{PasswordResetId, UserId};
use entity::jobs::{EmailMessage, Job, SendEmail};
use entity::tables::{outbox, password_resets, refresh_tokens, users};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use sha2::{Digest, Sha256};
use testkit::{Backend, TestDb};

use crate::helpers::insert_user;
use testkit::on_both_backends;

const PASSWORD: &str = "correct horse battery";

fn email(raw: &str) -> Email {
    Email::parse(raw).expect("valid email")
}

fn password(raw: &str) -> Password {
    Password::parse(raw).expect("valid password")
}

fn name(raw: &str) -> DisplayName {
    DisplayName::parse(raw).expect("valid name")
}

fn sha256_hex(raw: &str) -> String {
    format!("{:x}", Sha256::digest(raw.as_bytes()))
}

/// Registers a customer in its own write transaction, as the API does.
async fn register_customer(db: &TestDb, address: &str, pass: &str) -> Result<users::Model, DomainError> {
    let txn = begin_write(&db.conn).await?;
    let password_hash = password(pass).hash().await?;
    let user = register(
        &txn,
        &email(address),
        password_hash,
        &name("Ada Lovelace"),
        Role::Customer,
        None,
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}

/// Rotates in its own transaction and commits whatever the outcome, as the
/// API must: a theft-detection revocation is part of a failed rotation.
async fn rotate(db: &TestDb, raw: &str) -> Result<(users::Model, String), DomainError> {
    let txn = begin_write(&db.conn).await.expect("begin");
    let rotated = rotate_refresh_token(&txn, raw).await;
    txn.commit().await.expect("commit");
    rotated
}

async fn request_reset(db: &TestDb, address: &str) {
    let txn = begin_write(&db.conn).await.expect("begin");
    request_password_reset(&txn, &email(address), None)
        .await
        .expect("request reset");
    txn.commit().await.expect("commit");
}

/// Resets in its own transaction, committed only on success.
async fn reset(db: &TestDb, token: &str, new_password: &str) -> Result<(), DomainError> {
    let txn = begin_write(&db.conn).await?;
    reset_password(&txn, token, password(new_password).hash().await?).await?;
    txn.commit().await?;
    Ok(())
}

/// Every email job in the outbox, oldest first.
async fn outbox_emails(db: &TestDb) -> Vec<SendEmail> {
    outbox::Entity::find()
        .order_by_asc(outbox::Column::Id)
        .all(&db.conn)
        .await
        .expect("query outbox")
        .into_iter()
        .map(|row| {
            assert_eq!(row.job_name, SendEmail::NAME);
            serde_json::from_value(row.payload).expect("payload decodes")
        })
        .collect()
}

/// The reset of the newest password reset email in the outbox.
async fn newest_reset_email(db: &TestDb) -> PasswordResetId {
    outbox_emails(db)
        .await
        .into_iter()
        .rev()
        .find_map(|job| match job.message {
            EmailMessage::PasswordReset { reset_id, .. } => Some(reset_id),
            _ => None,
        })
        .expect("a password reset email")
}

/// The token the newest password reset email is sent with, minted as the
/// worker does when it sends it.
async fn send_newest_reset_email(db: &TestDb) -> String {
    let reset_id = newest_reset_email(db).await;
    mint_reset_token(&db.conn, reset_id)
        .await
        .expect("mint")
        .expect("the reset is usable")
}

async fn refresh_rows(db: &TestDb, user_id: UserId) -> Vec<refresh_tokens::Model> {
    refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::UserId.eq(user_id))
        .order_by_asc(refresh_tokens::Column::Id)
        .all(&db.conn)
        .await
        .expect("query refresh tokens")
}

async fn count_users(db: &TestDb) -> u64 {
    users::Entity::find().count(&db.conn).await.expect("count users")
}

fn is_unauthenticated<T: std::fmt::Debug>(result: &Result<T, DomainError>, message: &str) -> bool {
    matches!(result, Err(DomainError::Unauthenticated(m)) if *m == message)
}

async fn registered_users_authenticate_with_their_password_only(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let user = register_customer(&db, "ada@example.com", PASSWORD)
        .await
        .expect("register");

    let signed_in = authenticate(&db.conn, &email("ADA@example.com"), PASSWORD)
        .await
        .expect("the right password signs in");
    assert_eq!(signed_in.id, user.id);
    assert_eq!(signed_in.role, Role::Customer);
    assert!(
        user.password_hash.starts_with("$argon2id$"),
        "{}",
        user.password_hash
    );
    assert!(!user.password_hash.contains(PASSWORD));

    let wrong_password = authenticate(&db.conn, &email("ada@example.com"), "wrong horse battery").await;
    let unknown_email = authenticate(&db.conn, &email("grace@example.com"), PASSWORD).await;
    assert!(
        is_unauthenticated(&wrong_password, "invalid email or password"),
        "{wrong_password:?}"
    );
    assert!(
        is_unauthenticated(&unknown_email, "invalid email or password"),
        "{unknown_email:?}"
    );
    assert_eq!(
        find_user(&db.conn, user.id).await.expect("find"),
        Some(user),
        "find_user reads the account back"
    );
}
on_both_backends!(
    registered_users_authenticate_with_their_password_only,
    registered_users_authenticate_with_their_password_only
);

async fn an_email_registered_again_in_another_case_is_a_conflict(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    register_customer(&db, "Ada@Example.com", PASSWORD)
        .await
        .expect("first registration");
    // A row written with capitals (not through `Email`) still owns its address:
    // the unique index is on lower(email).
    insert_user(&db.conn, "Grace@Example.com").await;

    let again = register_customer(&db, "ADA@EXAMPLE.COM", PASSWORD).await;
    let legacy = register_customer(&db, "grace@example.com", PASSWORD).await;

    for outcome in [&again, &legacy] {
        assert!(
            matches!(outcome, Err(DomainError::Conflict(m)) if m == "email already registered"),
            "{outcome:?}"
        );
    }
    assert_eq!(count_users(&db).await, 2, "no second row for either address");
    assert_eq!(
        outbox_emails(&db).await.len(),
        1,
        "only the first registration is welcomed"
    );
}
on_both_backends!(
    an_email_registered_again_in_another_case_is_a_conflict,
    an_email_registered_again_in_another_case_is_a_conflict
);

async fn racing_registrations_of_one_email_make_one_account(backend: Backend) {
    let db = Arc::new(TestDb::migrated(backend).await);
    let attempts = ["race@example.com", "RACE@example.com"].map(|address| {
        let db = Arc::clone(&db);
        tokio::spawn(async move { register_customer(&db, address, PASSWORD).await })
    });

    let outcomes: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|joined| joined.expect("task ran"))
        .collect();

    assert_eq!(outcomes.iter().filter(|r| r.is_ok()).count(), 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .any(|r| matches!(r, Err(DomainError::Conflict(_)))),
        "{outcomes:?}"
    );
    assert_eq!(count_users(&db).await, 1);
}
on_both_backends!(
    racing_registrations_of_one_email_make_one_account,
    racing_registrations_of_one_email_make_one_account
);

async fn registration_writes_a_welcome_email_to_the_outbox(backend: Backend) {
    let db = TestDb::migrated(backend).await;

    let user = register_customer(&db, "Ada@Example.com", PASSWORD)
        .await
        .expect("register");

    assert_eq!(user.email, "ada@example.com");
    assert_eq!(user.name, "Ada Lovelace");
    assert_eq!(
        outbox_emails(&db).await,
        vec![SendEmail {
            dedupe_key: format!("welcome:{}", user.id),
            to: Email::parse("ada@example.com").expect("valid"),
            message: EmailMessage::Welcome {
                name: "Ada Lovelace".into()
            },
            request_id: None,
        }]
    );
}
on_both_backends!(
    registration_writes_a_welcome_email_to_the_outbox,
    registration_writes_a_welcome_email_to_the_outbox
);

async fn a_rolled_back_registration_leaves_no_user_and_no_email(backend: Backend) {
    let db = TestDb::migrated(backend).await;

    let txn = begin_write(&db.conn).await.expect("begin");
    register(
        &txn,
        &email("ada@example.com"),
        password(PASSWORD).hash().await.expect("hash"),
        &name("Ada"),
        Role::Customer,
        None,
    )
    .await
    .expect("register");
    txn.rollback().await.expect("rollback");

    assert_eq!(count_users(&db).await, 0);
    assert!(outbox_emails(&db).await.is_empty(), "no welcome for nobody");
}
on_both_backends!(
    a_rolled_back_registration_leaves_no_user_and_no_email,
    a_rolled_back_registration_leaves_no_user_and_no_email
);

async fn a_refresh_token_works_once_and_its_reuse_revokes_the_successor(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let ada = insert_user(&db.conn, "ada@example.com").await;
    let bob = insert_user(&db.conn, "bob@example.com").await;
    let bobs = issue_refresh_token(&db.conn, bob.id).await.expect("issue");
    let first = issue_refresh_token(&db.conn, ada.id).await.expect("issue");

    let stored = refresh_rows(&db, ada.id).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].token_hash,
        sha256_hex(&first),
        "only the digest is stored"
    );
    let lifetime = stored[0].expires_at - stored[0].created_at;
    assert!(
        (lifetime - REFRESH_TOKEN_TTL).abs() < TimeDelta::seconds(5),
        "{lifetime}"
    );

    let (owner, second) = rotate(&db, &first).await.expect("the first token rotates");
    assert_eq!(owner.id, ada.id);
    assert_ne!(second, first);
    let (_, third) = rotate(&db, &second).await.expect("the new token works");

    let replay = rotate(&db, &second).await;
    assert!(is_unauthenticated(&replay, "invalid refresh token"), "{replay:?}");
    let after_theft = rotate(&db, &third).await;
    assert!(
        is_unauthenticated(&after_theft, "invalid refresh token"),
        "reusing a spent token revokes its successor: {after_theft:?}"
    );
    assert!(is_unauthenticated(
        &rotate(&db, &first).await,
        "invalid refresh token"
    ));

    let rows = refresh_rows(&db, ada.id).await;
    assert_eq!(rows.len(), 3, "one row per issued token");
    let states: Vec<(bool, bool)> = rows
        .iter()
        .map(|r| (r.used_at.is_some(), r.revoked_at.is_some()))
        .collect();
    assert_eq!(
        states,
        vec![(true, false), (true, false), (false, true)],
        "two spent, the last revoked"
    );
    rotate(&db, &bobs)
        .await
        .expect("another user's tokens are untouched");
}
on_both_backends!(
    a_refresh_token_works_once_and_its_reuse_revokes_the_successor,
    a_refresh_token_works_once_and_its_reuse_revokes_the_successor
);

async fn rotation_on_the_pool_connection_also_keeps_the_theft_revocation(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let user = insert_user(&db.conn, "ada@example.com").await;
    let stolen = issue_refresh_token(&db.conn, user.id).await.expect("issue");
    let (_, thiefs) = rotate_refresh_token(&db.conn, &stolen)
        .await
        .expect("the thief rotates first");

    let owner = rotate_refresh_token(&db.conn, &stolen).await;

    assert!(is_unauthenticated(&owner, "invalid refresh token"), "{owner:?}");
    let thief = rotate_refresh_token(&db.conn, &thiefs).await;
    assert!(
        is_unauthenticated(&thief, "invalid refresh token"),
        "the thief's token is revoked: {thief:?}"
    );
}
on_both_backends!(
    rotation_on_the_pool_connection_also_keeps_the_theft_revocation,
    rotation_on_the_pool_connection_also_keeps_the_theft_revocation
);

async fn an_expired_refresh_token_is_refused(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let user = insert_user(&db.conn, "ada@example.com").await;
    let token = issue_refresh_token(&db.conn, user.id).await.expect("issue");
    refresh_tokens::Entity::update_many()
        .col_expr(
            refresh_tokens::Column::ExpiresAt,
            Expr::value(Utc::now() - TimeDelta::minutes(1)),
        )
        .filter(refresh_tokens::Column::UserId.eq(user.id))
        .exec(&db.conn)
        .await
        .expect("expire");

    let rotated = rotate(&db, &token).await;

    assert!(
        is_unauthenticated(&rotated, "invalid refresh token"),
        "{rotated:?}"
    );
    assert!(
        !revoke_refresh_token(&db.conn, &token).await.expect("revoke"),
        "nothing live to revoke"
    );
    assert_eq!(refresh_rows(&db, user.id).await.len(), 1, "no successor issued");
}
on_both_backends!(
    an_expired_refresh_token_is_refused,
    an_expired_refresh_token_is_refused
);

async fn logout_revokes_the_refresh_token(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let user = insert_user(&db.conn, "ada@example.com").await;
    let token = issue_refresh_token(&db.conn, user.id).await.expect("issue");
    let other_device = issue_refresh_token(&db.conn, user.id).await.expect("issue");

    assert!(revoke_refresh_token(&db.conn, &token).await.expect("revoke"));
    assert!(
        !revoke_refresh_token(&db.conn, &token)
            .await
            .expect("revoke again"),
        "logging out twice revokes nothing more"
    );
    assert!(
        !revoke_refresh_token(&db.conn, "not-a-token")
            .await
            .expect("revoke unknown")
    );

    let rotated = rotate(&db, &token).await;
    assert!(
        is_unauthenticated(&rotated, "invalid refresh token"),
        "{rotated:?}"
    );
    rotate(&db, &other_device)
        .await
        .expect("logout ends one session, not every session");
}
on_both_backends!(logout_revokes_the_refresh_token, logout_revokes_the_refresh_token);

async fn a_reset_request_writes_one_email_and_one_reset_for_known_emails_only(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let user = insert_user(&db.conn, "ada@example.com").await;

    request_reset(&db, "nobody@example.com").await;
    assert!(
        outbox_emails(&db).await.is_empty(),
        "no email for an unknown address"
    );
    assert_eq!(
        password_resets::Entity::find()
            .count(&db.conn)
            .await
            .expect("count"),
        0
    );

    request_reset(&db, "ADA@example.com").await;
    let resets = password_resets::Entity::find()
        .all(&db.conn)
        .await
        .expect("query");
    let emails = outbox_emails(&db).await;
    assert_eq!((resets.len(), emails.len()), (1, 1));
    let (reset, email) = (&resets[0], &emails[0]);
    let EmailMessage::PasswordReset { name, reset_id } = &email.message else {
        panic!("a password reset email, got {email:?}");
    };
    assert_eq!(
        *reset_id, reset.id,
        "the job names its reset and carries no token"
    );
    assert_eq!(reset.user_id, user.id);
    assert_eq!(reset.used_at, None);
    let lifetime = reset.expires_at - reset.created_at;
    assert!(
        (lifetime - PASSWORD_RESET_TTL).abs() < TimeDelta::seconds(5),
        "{lifetime}"
    );
    assert_eq!(email.dedupe_key, format!("password-reset:{}", reset.id));
    assert_eq!(email.to.as_str(), "ada@example.com");
    assert_eq!(name, &user.name);
}
on_both_backends!(
    a_reset_request_writes_one_email_and_one_reset_for_known_emails_only,
    a_reset_request_writes_one_email_and_one_reset_for_known_emails_only
);

async fn a_reset_token_from_the_email_sets_the_password_once_and_signs_out_everywhere(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let user = register_customer(&db, "ada@example.com", PASSWORD)
        .await
        .expect("register");
    let session = issue_refresh_token(&db.conn, user.id).await.expect("issue");
    request_reset(&db, "ada@example.com").await;
    let token = send_newest_reset_email(&db).await;

    reset(&db, &token, "a brand new password")
        .await
        .expect("the emailed token resets the password");

    let again = reset(&db, &token, "yet another password").await;
    assert!(
        matches!(
            &again,
            Err(DomainError::InvalidInput { field: "token", message }) if message == "invalid or expired reset token"
        ),
        "{again:?}"
    );
    let rotated = rotate(&db, &session).await;
    assert!(
        is_unauthenticated(&rotated, "invalid refresh token"),
        "a reset signs out every session: {rotated:?}"
    );
    authenticate(&db.conn, &email("ada@example.com"), "a brand new password")
        .await
        .expect("the new password signs in");
    let old = authenticate(&db.conn, &email("ada@example.com"), PASSWORD).await;
    assert!(is_unauthenticated(&old, "invalid email or password"), "{old:?}");
}
on_both_backends!(
    a_reset_token_from_the_email_sets_the_password_once_and_signs_out_everywhere,
    a_reset_token_from_the_email_sets_the_password_once_and_signs_out_everywhere
);

async fn an_expired_reset_token_is_refused(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    let user = insert_user(&db.conn, "ada@example.com").await;
    request_reset(&db, "ada@example.com").await;
    let token = send_newest_reset_email(&db).await;
    password_resets::Entity::update_many()
        .col_expr(
            password_resets::Column::ExpiresAt,
            Expr::value(Utc::now() - TimeDelta::minutes(1)),
        )
        .exec(&db.conn)
        .await
        .expect("expire");

    let outcome = reset(&db, &token, "a brand new password").await;

    assert!(
        matches!(outcome, Err(DomainError::InvalidInput { field: "token", .. })),
        "{outcome:?}"
    );
    let unchanged = find_user(&db.conn, user.id).await.expect("find").expect("exists");
    assert_eq!(unchanged.password_hash, user.password_hash);
}
on_both_backends!(
    an_expired_reset_token_is_refused,
    an_expired_reset_token_is_refused
);

async fn minting_again_kills_the_previous_token_and_a_spent_or_expired_reset_mints_nothing(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    insert_user(&db.conn, "ada@example.com").await;
    request_reset(&db, "ada@example.com").await;
    let reset_id = newest_reset_email(&db).await;
    let stored = || async {
        password_resets::Entity::find_by_id(reset_id)
            .one(&db.conn)
            .await
            .expect("query")
            .expect("the reset")
    };
    let unminted = stored().await.token_hash;

    let first = mint_reset_token(&db.conn, reset_id)
        .await
        .expect("mint")
        .expect("usable");
    assert_eq!(
        stored().await.token_hash,
        sha256_hex(&first),
        "only the digest is stored"
    );
    assert_ne!(
        sha256_hex(&first),
        unminted,
        "no token worked before the email was sent"
    );
    let second = mint_reset_token(&db.conn, reset_id)
        .await
        .expect("mint")
        .expect("usable");
    assert_ne!(first, second);

    let stale = reset(&db, &first, "a brand new password").await;
    assert!(
        matches!(stale, Err(DomainError::InvalidInput { field: "token", .. })),
        "the first email's token died when the second was minted: {stale:?}"
    );
    reset(&db, &second, "a brand new password")
        .await
        .expect("the newest token works");
    assert_eq!(
        mint_reset_token(&db.conn, reset_id).await.expect("mint"),
        None,
        "a used reset mints nothing"
    );

    request_reset(&db, "ada@example.com").await;
    let expiring = newest_reset_email(&db).await;
    password_resets::Entity::update_many()
        .col_expr(
            password_resets::Column::ExpiresAt,
            Expr::value(Utc::now() - TimeDelta::minutes(1)),
        )
        .filter(password_resets::Column::Id.eq(expiring))
        .exec(&db.conn)
        .await
        .expect("expire");
    assert_eq!(
        mint_reset_token(&db.conn, expiring).await.expect("mint"),
        None,
        "an expired reset mints nothing"
    );
}
on_both_backends!(
    minting_again_kills_the_previous_token,
    minting_again_kills_the_previous_token_and_a_spent_or_expired_reset_mints_nothing
);

async fn a_legacy_token_finds_its_usable_reset_by_hash(backend: Backend) {
    let db = TestDb::migrated(backend).await;
    insert_user(&db.conn, "ada@example.com").await;
    request_reset(&db, "ada@example.com").await;
    let reset_id = newest_reset_email(&db).await;
    let token = mint_reset_token(&db.conn, reset_id)
        .await
        .expect("mint")
        .expect("usable");

    assert_eq!(
        legacy_reset_id(&db.conn, &token).await.expect("query"),
        Some(reset_id)
    );
    assert_eq!(
        legacy_reset_id(&db.conn, "not-a-token").await.expect("query"),
        None
    );
    reset(&db, &token, "a brand new password").await.expect("reset");
    assert_eq!(
        legacy_reset_id(&db.conn, &token).await.expect("query"),
        None,
        "a used reset is not found"
    );
}
on_both_backends!(
    a_legacy_token_finds_its_usable_reset,
    a_legacy_token_finds_its_usable_reset_by_hash
);

async fn ensure_admin_creates_an_admin_then_promotes_an_existing_customer(backend: Backend) {
    let db = TestDb::migrated(backend).await;

    let txn = begin_write(&db.conn).await.expect("begin");
    let created = ensure_admin(
        &txn,
        &email("root@example.com"),
        &password(PASSWORD),
        &name("Root"),
    )
    .await
    .expect("create admin");
    txn.commit().await.expect("commit");
    assert_eq!((created.role, created.name.as_str()), (Role::Admin, "Root"));
    assert!(
        outbox_emails(&db).await.is_empty(),
        "an operator-made admin gets no welcome email"
    );

    let customer = insert_user(&db.conn, "ada@example.com").await;
    let session = issue_refresh_token(&db.conn, customer.id).await.expect("issue");
    let txn = begin_write(&db.conn).await.expect("begin");
    let promoted = ensure_admin(
        &txn,
        &email("Ada@Example.com"),
        &password("the admin password"),
        &name("Ignored"),
    )
    .await
    .expect("promote");
    txn.commit().await.expect("commit");

    assert_eq!(promoted.id, customer.id, "the same account, promoted");
    assert_eq!(promoted.role, Role::Admin);
    assert_eq!(promoted.name, customer.name, "the name is kept");
    assert_eq!(count_users(&db).await, 2);
    let signed_in = authenticate(&db.conn, &email("ada@example.com"), "the admin password")
        .await
        .expect("the new password signs in");
    assert_eq!(signed_in.role, Role::Admin);
    assert!(
        is_unauthenticated(&rotate(&db, &session).await, "invalid refresh token"),
        "a password change signs out the old sessions"
    );
}
on_both_backends!(
    ensure_admin_creates_an_admin_then_promotes_an_existing_customer,
    ensure_admin_creates_an_admin_then_promotes_an_existing_customer
);
