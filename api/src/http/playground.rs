//! GraphiQL on `GET /graphql` for a browser, with no CDN at run time.
//!
//! `playground/build.sh` (npm) copies four files into `playground/dist/`:
//! GraphiQL 3's UMD bundle and stylesheet, and React 18's UMD builds.
//! GraphiQL 3 is the last major that ships a UMD bundle (4 and later are ES
//! modules that expect a bundler), so these plain files run from `<script>`
//! tags and the api only has to serve them: [`Playground::load`] reads them
//! once at start-up and [`Playground::asset`] serves them from memory under
//! [`ASSETS_ROUTE`]. When they are not built, the page loads the same
//! versions from unpkg.com instead and `load` logs one warning saying how to
//! build them.

use std::{
    fmt, io,
    path::{Path, PathBuf},
    sync::Arc,
};

use actix_web::{
    HttpRequest, HttpResponse,
    http::{Method, header},
    web::{self, Bytes},
};
use serde::Deserialize;

use super::negotiate;

/// Where `playground/build.sh` puts the assets, fixed at compile time; the
/// `PLAYGROUND_DIR` setting overrides it.
pub const DEFAULT_ASSETS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../playground/dist");

/// The route [`Playground::asset`] answers, `{file}` being the asset's name.
pub const ASSETS_ROUTE: &str = "/playground/assets/{file}";
const ASSETS_PATH: &str = "/playground/assets";

/// Pinned in `playground/package.json`; a unit test keeps them in step.
const GRAPHIQL_VERSION: &str = "3.9.0";
const REACT_VERSION: &str = "18.3.1";

/// The files of `playground/dist/`, the only names [`Playground::asset`]
/// serves. Keep in step with `FILES` in `playground/build.sh`.
const ASSETS: [AssetFile; 4] = [
    AssetFile {
        name: "react.production.min.js",
        content_type: JAVASCRIPT,
        package: "react",
        version: REACT_VERSION,
        path_in_package: "umd/react.production.min.js",
    },
    AssetFile {
        name: "react-dom.production.min.js",
        content_type: JAVASCRIPT,
        package: "react-dom",
        version: REACT_VERSION,
        path_in_package: "umd/react-dom.production.min.js",
    },
    AssetFile {
        name: "graphiql.min.js",
        content_type: JAVASCRIPT,
        package: "graphiql",
        version: GRAPHIQL_VERSION,
        path_in_package: "graphiql.min.js",
    },
    AssetFile {
        name: "graphiql.min.css",
        content_type: "text/css; charset=utf-8",
        package: "graphiql",
        version: GRAPHIQL_VERSION,
        path_in_package: "graphiql.min.css",
    },
];
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// One browser file of the page.
struct AssetFile {
    /// Its name in `playground/dist/` and under [`ASSETS_ROUTE`].
    name: &'static str,
    content_type: &'static str,
    /// Where a CDN has it: `https://unpkg.com/{package}@{version}/{path_in_package}`.
    package: &'static str,
    version: &'static str,
    path_in_package: &'static str,
}

impl AssetFile {
    /// The URL the page loads it from. Local URLs carry the version so that
    /// browsers may cache them for good: an upgrade changes the URL.
    fn url(&self, local: bool) -> String {
        if local {
            format!("{ASSETS_PATH}/{}?v={}", self.name, self.version)
        } else {
            format!(
                "https://unpkg.com/{}@{}/{}",
                self.package, self.version, self.path_in_package
            )
        }
    }
}

/// The GraphiQL page and its assets, ready to serve. Cheap to clone.
#[derive(Clone)]
pub struct Playground {
    inner: Arc<Inner>,
}

struct Inner {
    page: String,
    /// The contents of [`ASSETS`], in that order; empty when they are not
    /// built and the page uses the CDN.
    assets: Vec<Bytes>,
}

impl Playground {
    /// Reads the built assets from `dir` (default [`DEFAULT_ASSETS_DIR`]) and
    /// renders the page for GraphiQL to send its requests to `endpoint`.
    /// When any asset cannot be read, logs one warning and falls back to a
    /// page that loads them from unpkg.com.
    #[must_use]
    pub fn load(dir: Option<PathBuf>, endpoint: &str) -> Self {
        let dir = dir.unwrap_or_else(|| PathBuf::from(DEFAULT_ASSETS_DIR));
        let assets = match read_assets(&dir) {
            Ok(assets) => assets,
            Err(missing) => {
                tracing::warn!(
                    "GraphiQL assets are not built ({missing}): the playground page loads them \
                     from unpkg.com, which needs internet access; run playground/build.sh \
                     (needs npm) to serve them from {}",
                    dir.display()
                );
                Vec::new()
            }
        };
        let page = render_page(endpoint, !assets.is_empty());
        Self {
            inner: Arc::new(Inner { page, assets }),
        }
    }

    /// Whether the assets are served by us rather than loaded from a CDN.
    #[must_use]
    pub fn is_local(&self) -> bool {
        !self.inner.assets.is_empty()
    }

    /// The GraphiQL HTML page.
    #[must_use]
    pub fn page(&self) -> HttpResponse {
        HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(self.inner.page.clone())
    }

    /// The asset called `name` (the `{file}` of [`ASSETS_ROUTE`]); 404 for
    /// any other name, and for every name when the assets are not built.
    #[must_use]
    pub fn asset(&self, name: &str) -> HttpResponse {
        let found = ASSETS
            .iter()
            .zip(&self.inner.assets)
            .find(|(file, _)| file.name == name);
        match found {
            Some((file, body)) => HttpResponse::Ok()
                .insert_header((header::CONTENT_TYPE, file.content_type))
                .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
                .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .body(body.clone()),
            None => HttpResponse::NotFound()
                .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
                .body("no such playground asset"),
        }
    }
}

/// Whether `req` is a browser opening the endpoint: a GET without a `query`
/// parameter from a client that accepts `text/html`. Such a request gets
/// [`Playground::page`] instead of a "missing query" error.
#[must_use]
pub fn wants_playground(req: &HttpRequest) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        query: Option<String>,
    }
    req.method() == Method::GET
        && negotiate::accepts_html(req)
        && web::Query::<Probe>::from_query(req.query_string()).is_ok_and(|probe| probe.query.is_none())
}

/// An asset that could not be read.
struct MissingAsset {
    path: PathBuf,
    error: io::Error,
}

impl fmt::Display for MissingAsset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.error)
    }
}

fn read_assets(dir: &Path) -> Result<Vec<Bytes>, MissingAsset> {
    ASSETS
        .iter()
        .map(|file| {
            let path = dir.join(file.name);
            std::fs::read(&path)
                .map(Bytes::from)
                .map_err(|error| MissingAsset { path, error })
        })
        .collect()
}

fn render_page(endpoint: &str, local: bool) -> String {
    let [react, react_dom, graphiql, css] = ASSETS.map(|file| file.url(local));
    // A JSON string is a JavaScript string literal; `</` must not close the
    // <script> element it sits in.
    let endpoint = serde_json::Value::from(endpoint)
        .to_string()
        .replace("</", "<\\/");
    let (crossorigin, source) = if local {
        ("", "from this server")
    } else {
        (
            " crossorigin",
            "from unpkg.com; run playground/build.sh to serve them locally",
        )
    };
    PAGE.replace("%REACT%", &react)
        .replace("%REACT_DOM%", &react_dom)
        .replace("%GRAPHIQL%", &graphiql)
        .replace("%CSS%", &css)
        .replace("%CROSSORIGIN%", crossorigin)
        .replace("%SOURCE%", source)
        .replace("%ENDPOINT%", &endpoint)
}

/// The page. GraphiQL's fetcher is our own so that it asks for
/// `application/graphql-response+json` first; headers typed into GraphiQL's
/// header editor (e.g. `Authorization`) are added to each request.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Storefront GraphiQL</title>
<link rel="stylesheet" href="%CSS%"%CROSSORIGIN%>
<style>html, body, #graphiql { height: 100%; margin: 0; overflow: hidden; }</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="%REACT%"%CROSSORIGIN%></script>
<script src="%REACT_DOM%"%CROSSORIGIN%></script>
<script src="%GRAPHIQL%"%CROSSORIGIN%></script>
<script>
(function () {
  var root = document.getElementById('graphiql');
  if (typeof GraphiQL === 'undefined' || typeof ReactDOM === 'undefined') {
    root.textContent = 'GraphiQL could not be loaded (its files come %SOURCE%).';
    return;
  }
  var endpoint = %ENDPOINT%;
  function fetcher(params, options) {
    var headers = Object.assign(
      {
        'Content-Type': 'application/json',
        'Accept': 'application/graphql-response+json, application/json'
      },
      options && options.headers
    );
    return fetch(endpoint, {
      method: 'POST',
      headers: headers,
      body: JSON.stringify(params),
      credentials: 'same-origin'
    }).then(function (response) { return response.json(); });
  }
  ReactDOM.createRoot(root).render(React.createElement(GraphiQL, { fetcher: fetcher }));
})();
</script>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use actix_web::{body::to_bytes, http::StatusCode};

    use super::*;

    #[test]
    fn pinned_versions_match_the_npm_package() {
        let package: serde_json::Value =
            serde_json::from_str(include_str!("../../../playground/package.json"))
                .expect("playground/package.json is JSON");
        let dependencies = &package["dependencies"];
        assert_eq!(dependencies["graphiql"], GRAPHIQL_VERSION);
        assert_eq!(dependencies["react"], REACT_VERSION);
        assert_eq!(dependencies["react-dom"], REACT_VERSION);
    }

    #[test]
    fn the_build_script_copies_every_served_asset() {
        let script = include_str!("../../../playground/build.sh");
        for file in &ASSETS {
            let source = format!("node_modules/{}/{}", file.package, file.path_in_package);
            assert!(script.contains(&source), "build.sh does not copy {source}");
        }
    }

    #[actix_web::test]
    async fn without_built_assets_the_page_uses_the_cdn_and_serves_no_files() {
        let playground = Playground::load(Some(PathBuf::from("/nonexistent")), "/graphql");
        assert!(!playground.is_local());
        let page = to_bytes(playground.page().into_body())
            .await
            .expect("the page body");
        let page = String::from_utf8_lossy(&page);
        assert!(page.contains("https://unpkg.com/graphiql@3.9.0/graphiql.min.js"));
        assert!(page.contains("https://unpkg.com/react@18.3.1/umd/react.production.min.js"));
        assert_eq!(
            playground.asset("graphiql.min.js").status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn the_endpoint_cannot_break_out_of_the_script() {
        let page = render_page("/x</script><script>alert(1)//", true);
        assert!(page.contains(r#"var endpoint = "/x<\/script><script>alert(1)//";"#));
    }
}
