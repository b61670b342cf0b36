use entity::jobs::{EmailMessage, SendEmail};
use entity::tables::outbox;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use testkit::Backend;

use crate::helpers::{TestApp, error_code, on_both_backends};

const ME: &str = "{ me { id email name role } }";

async fn a_customer_registers_sees_itself_and_logs_in_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let session = app.register("Ada@Example.com").await;
    assert_eq!(session.email, "ada@example.com", "emails are stored lower-cased");

    let me = app.graphql_as(&session, ME, json!({})).await;
    assert_eq!(me["data"]["me"]["email"], "ada@example.com");
    assert_eq!(me["data"]["me"]["role"], "CUSTOMER");
    assert_eq!(
        app.graphql(ME, json!({})).await["data"]["me"],
        json!(null),
        "anonymous me is null"
    );

    let again = app.login("ADA@example.com", "correct horse battery").await;
    assert_eq!(again.user_id, session.user_id);
}
on_both_backends!(
    register_and_login,
    a_customer_registers_sees_itself_and_logs_in_again
);

async fn registration_and_login_errors_have_stable_codes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("taken@example.com").await;
    let register = "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }";

    for (input, expected, field) in [
        (
            json!({"email": "TAKEN@example.com", "password": "long enough pw", "name": "X"}),
            "CONFLICT",
            None,
        ),
        (
            json!({"email": "not-an-email", "password": "long enough pw", "name": "X"}),
            "BAD_USER_INPUT",
            Some("email"),
        ),
        (
            json!({"email": "new@example.com", "password": "short", "name": "X"}),
            "BAD_USER_INPUT",
            Some("password"),
        ),
        // A display name would route the shop's mail to someone else.
        (
            json!({"email": "x<victim@example.com>", "password": "long enough pw", "name": "X"}),
            "BAD_USER_INPUT",
            Some("email"),
        ),
    ] {
        let body = app.graphql(register, json!({ "input": input })).await;
        assert_eq!(error_code(&body), expected, "{body}");
        assert_eq!(body["data"], json!(null));
        if let Some(field) = field {
            assert_eq!(body["errors"][0]["extensions"]["field"], field);
        }
    }

    let login = "mutation($input: LoginInput!) { login(input: $input) { accessToken } }";
    for (email, password) in [
        ("taken@example.com", "wrong password!"),
        ("nobody@example.com", "correct horse battery"),
    ] {
        let body = app
            .graphql(
                login,
                json!({ "input": { "email": email, "password": password } }),
            )
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED");
        assert_eq!(
            body["errors"][0]["message"],
            "not authenticated: invalid email or password"
        );
    }

    let forged = app.post(Some("not-a-jwt"), ME, json!({})).await;
    assert_eq!(
        error_code(&forged),
        "UNAUTHENTICATED",
        "a bad token is refused, not ignored"
    );
}
on_both_backends!(account_errors, registration_and_login_errors_have_stable_codes);

async fn refresh_tokens_rotate_and_logout_revokes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let session = app.register("rotate@example.com").await;
    let refresh =
        "mutation($t: String!) { refreshToken(token: $t) { accessToken refreshToken user { email } } }";

    let first = app.graphql(refresh, json!({ "t": session.refresh_token })).await;
    let rotated = first["data"]["refreshToken"]["refreshToken"]
        .as_str()
        .expect("new refresh token")
        .to_owned();
    assert_eq!(
        first["data"]["refreshToken"]["user"]["email"],
        "rotate@example.com"
    );
    let new_access = first["data"]["refreshToken"]["accessToken"]
        .as_str()
        .expect("access token");
    assert_eq!(
        app.post(Some(new_access), ME, json!({})).await["data"]["me"]["email"],
        "rotate@example.com"
    );

    let reused = app.graphql(refresh, json!({ "t": session.refresh_token })).await;
    assert_eq!(
        error_code(&reused),
        "UNAUTHENTICATED",
        "an old refresh token works once"
    );

    let second = app.register("logout@example.com").await;
    let logout = app
        .graphql(
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": second.refresh_token }),
        )
        .await;
    assert_eq!(logout["data"]["logout"], true);
    let after_logout = app.graphql(refresh, json!({ "t": second.refresh_token })).await;
    assert_eq!(error_code(&after_logout), "UNAUTHENTICATED");
    let _ = rotated;
}
on_both_backends!(refresh_and_logout, refresh_tokens_rotate_and_logout_revokes);

async fn password_reset_works_once_with_the_emailed_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let session = app.register("forgetful@example.com").await;
    let request = "mutation($e: String!) { requestPasswordReset(email: $e) }";

    let unknown = app.graphql(request, json!({ "e": "nobody@example.com" })).await;
    assert_eq!(
        unknown["data"]["requestPasswordReset"], true,
        "no hint about which emails exist"
    );
    assert_eq!(reset_tokens(&app).await.len(), 0);

    let known = app
        .graphql(request, json!({ "e": "Forgetful@example.com" }))
        .await;
    assert_eq!(known["data"]["requestPasswordReset"], true);
    let tokens = reset_tokens(&app).await;
    assert_eq!(tokens.len(), 1, "one reset email queued");

    let reset = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";
    let done = app
        .graphql(reset, json!({ "t": tokens[0], "p": "a brand new password" }))
        .await;
    assert_eq!(done["data"]["resetPassword"], true, "{done}");
    let again = app
        .graphql(reset, json!({ "t": tokens[0], "p": "yet another password" }))
        .await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT", "the token is single-use");

    let login = "mutation($input: LoginInput!) { login(input: $input) { accessToken } }";
    let old = app
        .graphql(
            login,
            json!({ "input": { "email": session.email, "password": "correct horse battery" } }),
        )
        .await;
    assert_eq!(error_code(&old), "UNAUTHENTICATED");
    app.login(&session.email, "a brand new password").await;
}
on_both_backends!(password_reset, password_reset_works_once_with_the_emailed_token);

/// The raw reset tokens in queued password-reset emails.
async fn reset_tokens(app: &TestApp) -> Vec<String> {
    let rows = outbox::Entity::find()
        .filter(outbox::Column::JobName.eq("send_email.v1"))
        .all(&app.state.db)
        .await
        .expect("outbox rows");
    rows.into_iter()
        .filter_map(
            |row| match serde_json::from_value::<SendEmail>(row.payload).ok()?.message {
                EmailMessage::PasswordReset { token, .. } => Some(token),
                _ => None,
            },
        )
        .collect()
}

#[tokio::test]
async fn an_answer_carrying_tokens_is_neither_cached_nor_sniffed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .json(&json!({
            "query": "mutation($input: RegisterInput!) { register(input: $input) { accessToken refreshToken } }",
            "variables": { "input": { "email": "headers@example.com", "password": "correct horse battery", "name": "H" } },
        }))
        .send()
        .await
        .expect("sent");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("x-content-type-options"), "nosniff");
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert!(body["data"]["register"]["accessToken"].is_string(), "{body}");
}
