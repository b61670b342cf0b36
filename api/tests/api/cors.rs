//! CORS: what a browser app on another origin gets, over plain HTTP and in
//! headless Chromium loading a page from a second server.
use std::time::{Duration, Instant};

use api::http::AllowedOrigins;
use fantoccini::Client;
use reqwest::{Method, header};
use serde_json::json;
use testkit::Backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::browser::Browser;
use crate::helpers::TestApp;

const QUERY: &str = "{ products(first: 2) { totalCount } }";

async fn app_allowing(origin: &str) -> TestApp {
    let allowed = AllowedOrigins::parse(origin).expect("an origin");
    TestApp::spawn_with(Backend::Sqlite, |config| {
        config.seed_demo_data = true;
        config.cors_allowed_origins = allowed;
    })
    .await
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, app.url("/graphql"))
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "content-type,authorization",
        )
        .send()
        .await
        .expect("preflight sent")
}

async fn post_from(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .post(app.url("/graphql"))
        .header(header::ORIGIN, origin)
        .json(&json!({ "query": QUERY }))
        .send()
        .await
        .expect("request sent")
}

fn header_of<'a>(response: &'a reqwest::Response, name: &header::HeaderName) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn an_allowed_origin_gets_its_preflight_and_its_answers_and_another_gets_no_cors_header() {
    // Arrange
    let allowed = "https://shop.example";
    let app = app_allowing(allowed).await;

    // Act and Assert: the allowed origin
    let answer = preflight(&app, allowed).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(header_of(&answer, &header::ACCESS_CONTROL_ALLOW_ORIGIN), allowed);
    assert!(header_of(&answer, &header::ACCESS_CONTROL_ALLOW_METHODS).contains("POST"));
    let allowed_headers = header_of(&answer, &header::ACCESS_CONTROL_ALLOW_HEADERS).to_lowercase();
    assert!(
        allowed_headers.contains("authorization") && allowed_headers.contains("content-type"),
        "{allowed_headers}"
    );
    assert!(
        header_of(&answer, &header::VARY)
            .to_lowercase()
            .contains("origin")
    );

    let answer = post_from(&app, allowed).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(header_of(&answer, &header::ACCESS_CONTROL_ALLOW_ORIGIN), allowed);
    assert!(
        header_of(&answer, &header::VARY)
            .to_lowercase()
            .contains("origin")
    );

    // Another origin: no CORS header on the preflight or the answer (the
    // request itself still runs, as a same-origin page's or curl's would).
    let other = "https://evil.example";
    let answer = preflight(&app, other).await;
    assert!(
        answer
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    assert_ne!(answer.status(), 200, "the preflight is refused");
    let answer = post_from(&app, other).await;
    assert!(
        answer
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    let body: serde_json::Value = answer.json().await.expect("JSON");
    assert_eq!(body["data"]["products"]["totalCount"], 32);
}

/// A second web server on `listener`: every path gets a page whose script
/// calls the api at `api` with `fetch` (a JSON body, so the browser sends
/// a preflight first) and shows what came back, or why
/// nothing did.
fn serve_pages(listener: TcpListener, api: String) -> tokio::task::JoinHandle<()> {
    let page = format!(
        r#"<!doctype html><html><body><pre id="result">waiting</pre><script>
fetch({api:?}, {{
  method: "POST",
  headers: {{ "Content-Type": "application/json", "Accept": "application/graphql-response+json" }},
  body: JSON.stringify({{ query: {QUERY:?} }})
}}).then(r => r.json())
  .then(body => {{ document.getElementById("result").textContent = JSON.stringify(body); }})
  .catch(error => {{ document.getElementById("result").textContent = "blocked: " + error; }});
</script></body></html>"#
    );
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let page = page.clone();
            tokio::spawn(async move {
                let mut request = [0_u8; 4096];
                let _ = stream.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    })
}

/// Loads `url` and returns what its `#result` shows once it stops waiting.
async fn result_of_page(client: &Client, url: &str) -> Result<String, String> {
    client
        .goto(url)
        .await
        .map_err(|e| format!("cannot open {url}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = client
            .execute(
                "return document.getElementById('result').textContent;",
                Vec::new(),
            )
            .await
            .map_err(|e| format!("cannot read the page: {e}"))?;
        let shown = shown.as_str().unwrap_or_default().to_owned();
        if shown != "waiting" {
            return Ok(shown);
        }
        if Instant::now() > deadline {
            return Err(format!("{url} still waiting after 30 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_page_from_an_allowed_origin_reads_the_answer_in_chromium_and_another_origin_cannot() {
    // Arrange: a page server, and the api allowing exactly its 127.0.0.1
    // origin; the same server reached as `localhost` is another origin.
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the page server");
    let page_port = listener.local_addr().expect("address").port();
    let app = app_allowing(&format!("http://127.0.0.1:{page_port}")).await;
    let pages = serve_pages(listener, app.url("/graphql"));
    let browser = Browser::start().await;

    // Act
    let allowed = result_of_page(&browser.client, &format!("http://127.0.0.1:{page_port}/")).await;
    let other = result_of_page(&browser.client, &format!("http://localhost:{page_port}/")).await;
    browser.stop().await;
    pages.abort();

    // Assert: what each page shows its visitor
    let allowed = allowed.expect("the allowed page finished");
    let answer: serde_json::Value =
        serde_json::from_str(&allowed).unwrap_or_else(|_| panic!("the answer: {allowed}"));
    assert_eq!(answer["data"]["products"]["totalCount"], 32, "{allowed}");
    let other = other.expect("the other page finished");
    assert!(
        other.starts_with("blocked: TypeError"),
        "the browser withholds the answer: {other}"
    );
}
