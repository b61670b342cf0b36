//! GraphiQL on `GET /graphql`: the page, its assets, and a real query typed
//! into it in headless Chromium.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use api::http::Playground;
use fantoccini::{Client, Locator};
use reqwest::{StatusCode, header};
use serde_json::{Value as Json, json};

use testkit::Backend;

use crate::{
    browser::Browser,
    helpers::TestApp,
    http::{TransportApp, spawn_app_with},
};

const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

/// The app with the built assets; fails when they are not built, since a
/// page that needs a CDN cannot render here (no internet).
async fn spawn_app_with_built_assets() -> TransportApp {
    let playground = Playground::load(None, "/graphql");
    assert!(
        playground.is_local(),
        "the GraphiQL assets are not built: run playground/build.sh (scripts/test does it)"
    );
    spawn_app_with(playground).await
}

async fn get_text(app: &TransportApp, path: &str, accept: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.address))
        .header(header::ACCEPT, accept)
        .send()
        .await
        .expect("the GET reaches the server")
}

fn header_of(response: &reqwest::Response, name: header::HeaderName) -> &str {
    response
        .headers()
        .get(&name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_browser_opening_the_endpoint_gets_the_graphiql_page() {
    // Arrange
    let app = spawn_app_with_built_assets().await;

    // Act
    let response = get_text(&app, "/graphql", BROWSER_ACCEPT).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_of(&response, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    let page = response.text().await.expect("the page");
    assert!(page.contains(r#"<script src="/playground/assets/graphiql.min.js?v=3.9.0">"#));
    assert!(page.contains(r#"var endpoint = "/graphql";"#));
    assert!(!page.contains("unpkg.com"), "the page uses a CDN:\n{page}");
}

#[tokio::test]
async fn the_assets_are_served_with_their_content_types_and_long_cache_headers() {
    let app = spawn_app_with_built_assets().await;

    for (name, content_type) in [
        ("graphiql.min.js", "text/javascript; charset=utf-8"),
        ("graphiql.min.css", "text/css; charset=utf-8"),
        ("react.production.min.js", "text/javascript; charset=utf-8"),
        ("react-dom.production.min.js", "text/javascript; charset=utf-8"),
    ] {
        let response = get_text(&app, &format!("/playground/assets/{name}?v=1"), "*/*").await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert_eq!(header_of(&response, header::CONTENT_TYPE), content_type);
        assert_eq!(
            header_of(&response, header::CACHE_CONTROL),
            "public, max-age=31536000, immutable"
        );
        assert!(response.bytes().await.expect("the asset").len() > 1000, "{name}");
    }
}

#[tokio::test]
async fn only_the_listed_asset_names_are_served() {
    let app = spawn_app_with_built_assets().await;

    for path in [
        "/playground/assets/package.json",
        "/playground/assets/graphiql.js",
        "/playground/assets/..%2Fpackage.json",
        "/playground/assets/%2E%2E%2F%2E%2E%2FCargo.toml",
    ] {
        let response = get_text(&app, path, "*/*").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn without_built_assets_the_page_loads_the_same_versions_from_a_cdn() {
    let missing = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("no-playground-assets");
    let app = spawn_app_with(Playground::load(Some(missing), "/graphql")).await;

    let response = get_text(&app, "/graphql", BROWSER_ACCEPT).await;

    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.expect("the page");
    assert!(page.contains("https://unpkg.com/graphiql@3.9.0/graphiql.min.js"));
    assert!(page.contains("https://unpkg.com/react-dom@18.3.1/umd/react-dom.production.min.js"));
    let asset = get_text(&app, "/playground/assets/graphiql.min.js", "*/*").await;
    assert_eq!(asset.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_query_typed_into_graphiql_in_chromium_shows_its_answer() {
    // Arrange: the real api, with the demo catalog.
    let app = TestApp::spawn_with(Backend::Sqlite, |config| config.seed_demo_data = true).await;
    let browser = Browser::start().await;

    // Act and Assert, with a screenshot when something fails
    let expected = json!({ "data": { "products": { "totalCount": 32 } } });
    let outcome = run_in_graphiql(
        &browser.client,
        &app.address,
        "{ products(first: 3) { totalCount } }",
        &expected,
    )
    .await;
    if let Err(failure) = outcome {
        let shot = screenshot(&browser.client).await;
        browser.stop().await;
        panic!("{failure} (screenshot: {shot})");
    }
    browser.stop().await;
}

#[tokio::test]
async fn graphiqls_docs_explorer_lists_the_query_fields_and_autocompletion_offers_products() {
    // Arrange: the real api, introspection on as in development.
    let app = TestApp::spawn(Backend::Sqlite).await;
    let browser = Browser::start().await;

    // Act and Assert, with a screenshot when something fails
    let outcome = explore_in_graphiql(&browser.client, &app.address).await;
    let shot = screenshot(&browser.client).await;
    browser.stop().await;
    if let Err(failure) = outcome {
        panic!("{failure} (screenshot: {shot})");
    }
}

/// What a person sees only when GraphiQL's introspection succeeded: the
/// docs explorer's Query page with its fields, and `products` offered while
/// typing `{ pro`.
async fn explore_in_graphiql(client: &Client, address: &str) -> Result<(), String> {
    open_graphiql(client, address).await?;

    execute(
        client,
        "document.querySelector('button[aria-label*=\"Documentation\"]').click(); return true;",
    )
    .await?;
    wait_for(
        client,
        "the docs explorer's Query page listing its fields",
        || async {
            let shown = execute(
                client,
                "const pane = document.querySelector('.graphiql-doc-explorer'); \
             if (!pane) return ''; \
             const query = Array.from(pane.querySelectorAll('a')).find(a => a.textContent === 'Query'); \
             if (query) query.click(); \
             return Array.from(pane.querySelectorAll('.graphiql-doc-explorer-field-name')) \
               .map(a => a.textContent).join(' ');",
            )
            .await?;
            let fields: Vec<&str> = shown.as_str().unwrap_or_default().split(' ').collect();
            Ok(["me", "product", "products", "order", "orders"]
                .iter()
                .all(|field| fields.contains(field)))
        },
    )
    .await?;

    execute(
        client,
        "const cm = document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror; \
         cm.setValue(''); cm.focus(); return true;",
    )
    .await?;
    client
        .find(Locator::Css(".graphiql-query-editor .CodeMirror textarea"))
        .await
        .map_err(|error| format!("no query editor input: {error}"))?
        .send_keys("{ pro")
        .await
        .map_err(|error| format!("cannot type into the query editor: {error}"))?;
    wait_for(client, "autocompletion offering products", || async {
        let hints = execute(
            client,
            "return Array.from(document.querySelectorAll('.CodeMirror-hints .CodeMirror-hint')) \
               .map(li => li.textContent);",
        )
        .await?;
        Ok(hints
            .as_array()
            .is_some_and(|hints| hints.iter().any(|hint| hint == "products")))
    })
    .await
}

/// Opens GraphiQL at `address` and waits for its query editor.
async fn open_graphiql(client: &Client, address: &str) -> Result<(), String> {
    client
        .goto(&format!("{address}/graphql"))
        .await
        .map_err(|error| format!("cannot open /graphql: {error}"))?;

    // Every script comes from this server: a CDN cannot be reached here, and
    // a page that needs one is broken for anyone offline.
    let sources = execute(
        client,
        "return Array.from(document.scripts).filter(s => s.src).map(s => s.getAttribute('src'));",
    )
    .await?;
    let sources = sources.as_array().cloned().unwrap_or_default();
    if sources.len() != 3
        || !sources.iter().all(|src| {
            src.as_str()
                .is_some_and(|src| src.starts_with("/playground/assets/"))
        })
    {
        return Err(format!(
            "the page's scripts are not the three local assets: {sources:?}"
        ));
    }

    wait_for(client, "the query editor", || async {
        let editor = execute(
            client,
            "return !!document.querySelector('.graphiql-query-editor .CodeMirror');",
        )
        .await?;
        Ok(editor == json!(true))
    })
    .await
}

/// Opens GraphiQL at `address`, types `query`, runs it and waits for `expected` in the result pane
/// (besides `extensions.cost`, which every answer carries).
async fn run_in_graphiql(client: &Client, address: &str, query: &str, expected: &Json) -> Result<(), String> {
    open_graphiql(client, address).await?;
    let set_query = format!(
        "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue({}); return true;",
        Json::String(query.to_owned())
    );
    execute(client, &set_query).await?;
    client
        .find(Locator::Css(".graphiql-execute-button"))
        .await
        .map_err(|error| format!("no execute button: {error}"))?
        .click()
        .await
        .map_err(|error| format!("cannot click the execute button: {error}"))?;

    wait_for(client, "the answer in the result pane", || async {
        let result = execute(
            client,
            "const pane = document.querySelector('.graphiql-response .CodeMirror'); \
             return pane ? pane.CodeMirror.getValue() : '';",
        )
        .await?;
        let text = result.as_str().unwrap_or_default();
        Ok(serde_json::from_str::<Json>(text).is_ok_and(|mut answer| {
            let cost = answer
                .get_mut("extensions")
                .and_then(Json::as_object_mut)
                .and_then(|extensions| extensions.remove("cost"));
            if answer
                .get("extensions")
                .and_then(Json::as_object)
                .is_some_and(serde_json::Map::is_empty)
            {
                answer.as_object_mut().map(|answer| answer.remove("extensions"));
            }
            cost.is_some_and(|cost| cost["throttleStatus"].is_object()) && &answer == expected
        }))
    })
    .await
}

async fn execute(client: &Client, script: &str) -> Result<Json, String> {
    client
        .execute(script, Vec::new())
        .await
        .map_err(|error| format!("script failed ({script}): {error}"))
}

/// Polls `check` until it says yes, for at most 30 s.
async fn wait_for<F, Fut>(client: &Client, what: &str, check: F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<bool, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if check().await? {
            return Ok(());
        }
        if Instant::now() > deadline {
            let body = execute(client, "return document.body.innerText.slice(0, 2000);")
                .await
                .unwrap_or_default();
            return Err(format!("timed out waiting for {what}; the page shows: {body}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Saves a screenshot to `target/playground.png`; says where, or why not.
async fn screenshot(client: &Client) -> String {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().map_or_else(
        || PathBuf::from("playground.png"),
        |target| target.join("playground.png"),
    );
    match client.screenshot().await {
        Ok(png) => match std::fs::write(&path, png) {
            Ok(()) => path.display().to_string(),
            Err(error) => format!("cannot write {}: {error}", path.display()),
        },
        Err(error) => format!("cannot take one: {error}"),
    }
}
