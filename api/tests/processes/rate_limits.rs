//! Rate limits are shared by every api instance: requests split between
//! two api processes on one Redis are limited as one client's.
use entity::tables::password_resets;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use testkit::{GraphqlClient, PASSWORD};

use crate::harness::Cluster;

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_processes_share_one_limit() {
    // Arrange: two api instances on one database and one Redis namespace.
    let mut cluster = Cluster::start("rate_limits", &[]).await;
    let second = cluster.start_api("api-2").await;
    let apis = [
        cluster.graphql.clone(),
        GraphqlClient::new(format!("http://127.0.0.1:{}", second.port)),
    ];
    cluster.register("victim@example.com").await;

    // Act: ten reset requests for one address, alternating between them.
    let mut answers = Vec::new();
    for n in 0..10 {
        let body = apis[n % 2]
            .post(
                None,
                "mutation { requestPasswordReset(email: \"victim@example.com\") }",
                json!({}),
            )
            .await;
        answers.push(body);
    }

    // Assert: three an hour per address in all, not three per instance.
    let allowed = answers
        .iter()
        .filter(|body| body["data"]["requestPasswordReset"] == json!(true))
        .count();
    assert_eq!(allowed, 3, "{answers:#?}");
    assert!(
        answers[3..].iter().all(|body| code(body) == "RATE_LIMITED"),
        "{answers:#?}"
    );
    let started = password_resets::Entity::find()
        .count(&cluster.db.conn)
        .await
        .expect("count");
    assert_eq!(started, 3);

    // Failed logins seen by either instance block on both.
    let login = "mutation($input: LoginInput!) { login(input: $input) { accessToken } }";
    for n in 0..5 {
        let input = json!({ "input": { "email": "victim@example.com", "password": format!("guess {n}") } });
        let body = apis[n % 2].post(None, login, input).await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    }
    for api in &apis {
        let input = json!({ "input": { "email": "victim@example.com", "password": PASSWORD } });
        let body = api.post(None, login, input).await;
        assert_eq!(code(&body), "RATE_LIMITED", "blocked on both instances: {body}");
    }
}
