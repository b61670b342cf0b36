//! CORS: which browser origins may call the api (`CORS_ALLOWED_ORIGINS`).
//!
//! A comma-separated list of origins, `scheme://host[:port]`, where the port
//! may be `*` (any port of that host, for dev servers), or `*` alone (any
//! origin: the api authenticates with bearer tokens, never cookies, so a
//! page cannot borrow a visitor's session). Development allows
//! `http://localhost:*` and `http://127.0.0.1:*` by default; production
//! allows none until told.
//!
//! An allowed origin gets a preflight answer for `GET`/`POST` with
//! `Content-Type`, `Authorization`, `Accept` and `X-Request-Id`, and
//! `Access-Control-Allow-Origin` (its own origin, never `*`) on real
//! responses; every answer carries `Vary: Origin` so caches keep them
//! apart. Any other origin gets no CORS header at all, so the browser keeps
//! the answer from the page; the request itself is not refused, since the
//! same-origin GraphiQL page and non-browser clients send `Origin` too.
use actix_cors::Cors;
use actix_web::http::{Method, header};

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE_SECS: usize = 600;

/// The origins allowed to call the api from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<Pattern>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Any,
    Exact(String),
    /// `scheme://host:` followed by any port.
    AnyPort(String),
}

impl AllowedOrigins {
    /// What development allows when `CORS_ALLOWED_ORIGINS` is unset: pages
    /// served from this machine on any port.
    #[must_use]
    pub fn development() -> Self {
        Self(vec![
            Pattern::AnyPort("http://localhost:".into()),
            Pattern::AnyPort("http://127.0.0.1:".into()),
        ])
    }

    /// What production allows when `CORS_ALLOWED_ORIGINS` is unset: nothing.
    #[must_use]
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// Parses the comma-separated list of `CORS_ALLOWED_ORIGINS`.
    ///
    /// # Errors
    /// A message naming the entry that is not an origin.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut patterns = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                patterns.push(Pattern::Any);
                continue;
            }
            let (scheme, rest) = entry
                .split_once("://")
                .ok_or_else(|| format!("{entry:?} is not an origin (scheme://host[:port])"))?;
            if !matches!(scheme, "http" | "https") {
                return Err(format!("{entry:?}: the scheme must be http or https"));
            }
            let (host, port) = match rest.rsplit_once(':') {
                Some((host, port)) if !rest.ends_with(']') => (host, Some(port)),
                _ => (rest, None),
            };
            let host_ok = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
            if !host_ok {
                return Err(format!(
                    "{entry:?}: an origin has only a scheme, a host and a port (no path)"
                ));
            }
            match port {
                Some("*") => patterns.push(Pattern::AnyPort(format!("{scheme}://{host}:"))),
                Some(port) if port.parse::<u16>().is_ok() => {
                    patterns.push(Pattern::Exact(entry.to_ascii_lowercase()));
                }
                Some(port) => return Err(format!("{entry:?}: {port:?} is not a port")),
                None => patterns.push(Pattern::Exact(entry.to_ascii_lowercase())),
            }
        }
        Ok(Self(patterns))
    }

    /// Whether a browser page of `origin` may read the api's answers.
    #[must_use]
    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        self.0.iter().any(|pattern| match pattern {
            Pattern::Any => true,
            Pattern::Exact(allowed) => *allowed == origin,
            Pattern::AnyPort(prefix) => origin
                .strip_prefix(prefix.as_str())
                .is_some_and(|port| port.parse::<u16>().is_ok()),
        })
    }

    /// The actix middleware enforcing this list.
    pub fn middleware(&self) -> Cors {
        let allowed = self.clone();
        Cors::default()
            .allowed_origin_fn(move |origin, _| origin.to_str().is_ok_and(|origin| allowed.allows(origin)))
            .allowed_methods([Method::GET, Method::POST])
            .allowed_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                header::ACCEPT,
                header::HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([header::HeaderName::from_static("x-request-id")])
            .max_age(PREFLIGHT_MAX_AGE_SECS)
            .block_on_origin_mismatch(false)
    }
}

#[cfg(test)]
mod tests {
    use super::AllowedOrigins;

    #[test]
    fn development_allows_this_machine_on_any_port_and_nothing_else() {
        let dev = AllowedOrigins::development();
        assert!(dev.allows("http://localhost:5173"));
        assert!(dev.allows("http://127.0.0.1:3000"));
        assert!(!dev.allows("http://localhost"));
        assert!(!dev.allows("http://localhost:5173.evil.example"));
        assert!(!dev.allows("http://localhost.evil.example:80"));
        assert!(!dev.allows("https://shop.example"));
        assert!(!AllowedOrigins::none().allows("http://localhost:5173"));
    }

    #[test]
    fn a_list_names_exact_origins_ports_or_everyone() {
        let list = AllowedOrigins::parse("https://shop.example, http://dev.example:*").expect("parses");
        assert!(list.allows("https://shop.example"));
        assert!(list.allows("HTTPS://SHOP.EXAMPLE"));
        assert!(!list.allows("https://shop.example:8443"));
        assert!(!list.allows("http://shop.example"));
        assert!(list.allows("http://dev.example:8080"));
        assert!(
            AllowedOrigins::parse("*")
                .expect("parses")
                .allows("https://any.example")
        );
        assert_eq!(
            AllowedOrigins::parse(" ").expect("parses"),
            AllowedOrigins::none()
        );
    }

    #[test]
    fn what_is_not_an_origin_is_refused_with_the_entry_named() {
        for bad in [
            "shop.example",
            "ftp://shop.example",
            "https://shop.example/path",
            "https://shop.example:99999",
        ] {
            let error = AllowedOrigins::parse(bad).expect_err(bad);
            assert!(error.contains(bad), "{error}");
        }
    }
}
