use serde_json::json;
use testkit::{Backend, Behaviour, TestSmtp};

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
    let smtp = TestSmtp::start(Behaviour::Accept);
    let app = TestApp::spawn_with_worker(backend, &smtp).await;
    let session = app.register("forgetful@example.com").await;
    let request = "mutation($e: String!) { requestPasswordReset(email: $e) }";

    let unknown = app.graphql(request, json!({ "e": "nobody@example.com" })).await;
    assert_eq!(
        unknown["data"]["requestPasswordReset"], true,
        "no hint about which emails exist"
    );

    let known = app
        .graphql(request, json!({ "e": "Forgetful@example.com" }))
        .await;
    assert_eq!(known["data"]["requestPasswordReset"], true);
    let emails = smtp.wait_for("Reset your", 1).await;
    assert_eq!(
        (emails.len(), emails[0].to.as_str()),
        (1, "forgetful@example.com"),
        "one reset email, none to the unknown address"
    );
    let tokens = [emails[0].reset_token()];

    let reset = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";
    let done = app
        .graphql(reset, json!({ "t": tokens[0], "p": "a brand new password" }))
        .await;
    assert_eq!(done["data"]["resetPassword"], true, "{done}");
    let again = app
        .graphql(reset, json!({ "t": tokens[0], "p": "yet another password" }))
        .await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT", "the token is single-use");
    // The old access token dies with the old password.
    token_dies(&app, &session, "the password was reset").await;

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

/// Whether `session`'s access token still reads `me`.
async fn token_works(app: &TestApp, session: &crate::helpers::Session) -> bool {
    let body = app.graphql_as(session, ME, json!({})).await;
    body["data"]["me"]["email"] == session.email.as_str()
}

/// Polls until the access token stops working: within seconds, or fails.
async fn token_dies(app: &TestApp, session: &crate::helpers::Session, why: &str) {
    for _ in 0..50 {
        if !token_works(app, session).await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the access token still works 5 s after {why}");
}

async fn access_tokens_die_with_their_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    // Signing out everywhere ends it at once on this instance.
    let session = app.register("everywhere@example.com").await;
    assert!(token_works(&app, &session).await);
    let done = app
        .graphql_as(&session, "mutation { logoutEverywhere }", json!({}))
        .await;
    assert_eq!(done["data"]["logoutEverywhere"], true, "{done}");
    assert!(!token_works(&app, &session).await, "dead at once");
    let body = app.graphql_as(&session, ME, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");

    // A stolen refresh token presented again ends the session.
    let victim = app.register("victim@example.com").await;
    let refresh = "mutation($t: String!) { refreshToken(token: $t) { accessToken } }";
    let first = app.graphql(refresh, json!({ "t": victim.refresh_token })).await;
    assert!(
        first["data"]["refreshToken"]["accessToken"].is_string(),
        "{first}"
    );
    let replayed = app.graphql(refresh, json!({ "t": victim.refresh_token })).await;
    assert_eq!(error_code(&replayed), "UNAUTHENTICATED", "{replayed}");
    token_dies(&app, &victim, "refresh-token theft was detected").await;
}
on_both_backends!(session_end, access_tokens_die_with_their_session);

#[tokio::test]
async fn a_token_from_another_issuer_or_for_another_audience_is_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let session = app.register("aud@example.com").await;
    let now = chrono::Utc::now().timestamp();
    for (iss, aud) in [("storefront", "another-api"), ("someone-else", "storefront-api")] {
        let claims = json!({
            "sub": session.user_id, "role": "CUSTOMER", "ver": 0,
            "iss": iss, "aud": aud, "iat": now, "exp": now + 600,
        });
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(crate::helpers::JWT_SECRET.as_bytes()),
        )
        .expect("sign");
        let forged = crate::helpers::Session {
            access_token: token,
            ..session.clone()
        };
        let body = app.graphql_as(&forged, ME, json!({})).await;
        assert_eq!(
            error_code(&body),
            "UNAUTHENTICATED",
            "iss {iss}, aud {aud}: {body}"
        );
    }
    assert!(token_works(&app, &session).await, "the real one works");
}
