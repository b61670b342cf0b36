//! Persisted queries: a client sends the SHA-256 of a document instead of
//! the document (`extensions.persistedQuery.sha256Hash`, Apollo's protocol,
//! over POST or GET, so a query can be a cacheable GET of a few bytes).
//!
//! - **Automatic** (the default): an unknown hash is answered
//!   PERSISTED_QUERY_NOT_FOUND; the client then sends the document with its
//!   hash, which is checked (PERSISTED_QUERY_HASH_MISMATCH otherwise),
//!   stored, and run. Stored in Redis (`<QUEUE_NAMESPACE>:apq:<hash>`, kept
//!   [`STORED_FOR_SECS`] after its last registration) when there is Redis,
//!   else in memory (the [`MEMORY_CAPACITY`] newest). Documents over
//!   [`MAX_DOCUMENT_BYTES`] are run but not stored. Registrations are rate
//!   limited per client IP (`RATE_LIMIT_PERSISTED_QUERY_IP`): past it, a
//!   registration is refused with RATE_LIMITED (HTTP 429, `Retry-After`),
//!   so an anonymous client cannot fill Redis.
//! - **Trusted documents** (`TRUSTED_DOCUMENTS=manifest.json`, for
//!   production): only the documents in the manifest run, sent by hash or
//!   in full; anything else is refused with PERSISTED_QUERY_NOT_ALLOWED.
//!   The manifest is GraphQL Code Generator's persisted documents
//!   (`{"<sha256>": "<document>", …}`) or Apollo's persisted query list
//!   (`{"format": "apollo-persisted-query-manifest", "operations":
//!   [{"id", "body", …}]}`); every id must be the SHA-256 of its document.
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use redis::aio::ConnectionManager;

use super::client_ip::ClientIp;
use crate::throttle::rules::Limit;
use crate::throttle::{Limiter, Quota};
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};

/// How long Redis keeps a registered document after its last registration.
pub const STORED_FOR_SECS: u64 = 7 * 24 * 3600;
/// Documents kept in memory without Redis.
pub const MEMORY_CAPACITY: usize = 1_000;
/// Longer documents are run but never stored.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// A persisted-query refusal: its `extensions.code` and message, and for
/// RATE_LIMITED the seconds to wait (`extensions.retryAfter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// `{"message", "extensions": {"code", "retryAfter"?}}`.
    #[must_use]
    pub fn to_json(&self) -> Json {
        let mut extensions = Map::new();
        extensions.insert("code".into(), self.code.into());
        if let Some(retry_after) = self.retry_after {
            extensions.insert("retryAfter".into(), retry_after.into());
        }
        serde_json::json!({ "message": self.message, "extensions": extensions })
    }
}

/// How this api treats persisted queries.
#[derive(Clone)]
pub enum PersistedQueries {
    Automatic(Store, Option<Registrations>),
    /// Only these documents, by hash.
    Trusted(Arc<HashMap<String, String>>),
}

/// How many documents one client may register.
#[derive(Clone)]
pub struct Registrations {
    pub limiter: Limiter,
    pub quota: Quota,
}

/// Where automatic persisted queries are kept.
#[derive(Clone)]
pub enum Store {
    Memory(Arc<Mutex<Memory>>),
    Redis {
        conn: ConnectionManager,
        prefix: Arc<str>,
    },
}

/// The newest documents, oldest evicted first.
#[derive(Default)]
pub struct Memory {
    documents: HashMap<String, String>,
    order: VecDeque<String>,
}

impl PersistedQueries {
    /// Automatic persisted queries kept in memory.
    #[must_use]
    pub fn in_memory() -> Self {
        Self::Automatic(Store::Memory(Arc::default()), None)
    }

    /// Automatic persisted queries kept in Redis under `<namespace>:apq:`;
    /// connects on first use, so Redis may be down at start (a lookup that
    /// fails is a miss: the client sends the document).
    ///
    /// # Errors
    /// When `url` is not a Redis URL.
    pub fn in_redis(
        url: &str,
        namespace: &str,
        timeouts: worker::queue::RedisTimeouts,
    ) -> redis::RedisResult<Self> {
        let conn = ConnectionManager::new_lazy_with_config(
            redis::Client::open(url)?,
            worker::queue::redis_config(timeouts),
        )?;
        Ok(Self::Automatic(
            Store::Redis {
                conn,
                prefix: format!("{namespace}:apq:").into(),
            },
            None,
        ))
    }

    /// The same, with each client's registrations limited by `limit`
    /// (trusted documents register nothing).
    #[must_use]
    pub fn limit_registrations(self, limit: Option<Registrations>) -> Self {
        match self {
            Self::Automatic(store, _) => Self::Automatic(store, limit),
            trusted @ Self::Trusted(_) => trusted,
        }
    }

    /// Trusted documents from a manifest file (see the module docs).
    ///
    /// # Errors
    /// A message saying why the file is not a usable manifest.
    pub fn trusted(path: &Path) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let json: Json =
            serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
        let entries: Vec<(String, String)> = match &json {
            Json::Object(object)
                if object.get("format").and_then(Json::as_str) == Some("apollo-persisted-query-manifest") =>
            {
                object
                    .get("operations")
                    .and_then(Json::as_array)
                    .ok_or("an Apollo manifest needs `operations`")?
                    .iter()
                    .map(|op| match (op["id"].as_str(), op["body"].as_str()) {
                        (Some(id), Some(body)) => Ok((id.to_owned(), body.to_owned())),
                        _ => Err("every Apollo manifest operation needs `id` and `body`".to_owned()),
                    })
                    .collect::<Result<_, _>>()?
            }
            Json::Object(object) => object
                .iter()
                .map(|(id, body)| match body.as_str() {
                    Some(body) => Ok((id.trim_start_matches("sha256:").to_owned(), body.to_owned())),
                    None => Err(format!("the document of {id} is not a string")),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err("a manifest is a JSON object".into()),
        };
        let mut documents = HashMap::new();
        for (id, body) in entries {
            if sha256(&body) != id.to_ascii_lowercase() {
                return Err(format!("the id {id} is not the SHA-256 of its document"));
            }
            documents.insert(id.to_ascii_lowercase(), body);
        }
        Ok(Self::Trusted(Arc::new(documents)))
    }

    /// The names of the trusted documents' operations (none for automatic
    /// persisted queries): the operation names metrics always label.
    #[must_use]
    pub fn operation_names(&self) -> Vec<String> {
        let Self::Trusted(documents) = self else {
            return Vec::new();
        };
        documents
            .values()
            .filter_map(|body| async_graphql::parser::parse_query(body).ok())
            .flat_map(|document| {
                document
                    .operations
                    .iter()
                    .filter_map(|(name, _)| name.map(|name| name.to_string()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The document to run for a request from `client` that sent `query`
    /// (maybe none) and `extensions`; `Ok(None)` when there is none (the
    /// transport says `query` is missing).
    ///
    /// # Errors
    /// The [`Refusal`] of an unknown, mismatched or untrusted document, or
    /// of a registration over the client's limit.
    pub async fn resolve(
        &self,
        query: Option<String>,
        extensions: Option<&Map<String, Json>>,
        client: Option<&ClientIp>,
    ) -> Result<Option<String>, Refusal> {
        let hash = match extensions.and_then(|e| e.get("persistedQuery")) {
            None | Some(Json::Null) => None,
            Some(persisted) => {
                if persisted["version"].as_i64() != Some(1) {
                    return Err(Refusal::new(
                        "PERSISTED_QUERY_NOT_SUPPORTED",
                        "only version 1 of persistedQuery is supported",
                    ));
                }
                let hash = persisted["sha256Hash"]
                    .as_str()
                    .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .ok_or_else(|| {
                        Refusal::new("BAD_REQUEST", "persistedQuery.sha256Hash must be 64 hex digits")
                    })?;
                Some(hash.to_ascii_lowercase())
            }
        };
        match self {
            Self::Trusted(documents) => {
                let hash = match (&hash, &query) {
                    (Some(hash), _) => hash.clone(),
                    (None, Some(query)) => sha256(query),
                    (None, None) => return Ok(None),
                };
                match documents.get(&hash) {
                    Some(document) => Ok(Some(document.clone())),
                    None => Err(Refusal::new(
                        "PERSISTED_QUERY_NOT_ALLOWED",
                        "this server runs only its trusted documents, and this is not one of them",
                    )),
                }
            }
            Self::Automatic(store, registrations) => match (hash, query) {
                (None, query) => Ok(query),
                (Some(hash), None) => match store.get(&hash).await {
                    Some(document) => Ok(Some(document)),
                    None => Err(Refusal::new(
                        "PERSISTED_QUERY_NOT_FOUND",
                        "PersistedQueryNotFound",
                    )),
                },
                (Some(hash), Some(query)) => {
                    if sha256(&query) != hash {
                        return Err(Refusal::new(
                            "PERSISTED_QUERY_HASH_MISMATCH",
                            "persistedQuery.sha256Hash is not the SHA-256 of the query",
                        ));
                    }
                    if query.len() <= MAX_DOCUMENT_BYTES {
                        if let Some(registrations) = registrations {
                            registrations.admit(client).await?;
                        }
                        store.set(&hash, &query).await;
                    }
                    Ok(Some(query))
                }
            },
        }
    }
}

impl Registrations {
    /// Takes one registration from `client`'s allowance.
    async fn admit(&self, client: Option<&ClientIp>) -> Result<(), Refusal> {
        let subject = client.map_or_else(|| "unknown".to_owned(), ClientIp::subject);
        let limit = Limit::PersistedQueryIp.name();
        let decision = self.limiter.take(limit, &subject, self.quota, 1).await;
        if decision.allowed {
            return Ok(());
        }
        Err(Refusal {
            code: crate::errors::code::RATE_LIMITED,
            message:
                "too many persisted queries registered: send the query without its hash, or try again later"
                    .into(),
            retry_after: Some(decision.retry_after_secs()),
        })
    }
}

impl Store {
    async fn get(&self, hash: &str) -> Option<String> {
        match self {
            Self::Memory(memory) => memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .documents
                .get(hash)
                .cloned(),
            Self::Redis { conn, prefix } => {
                let found: redis::RedisResult<Option<String>> = redis::cmd("GET")
                    .arg(format!("{prefix}{hash}"))
                    .query_async(&mut conn.clone())
                    .await;
                found.unwrap_or_else(|error| {
                    // The client sends the document next: nothing is lost.
                    tracing::warn!(%error, "persisted queries: Redis lookup failed");
                    None
                })
            }
        }
    }

    async fn set(&self, hash: &str, document: &str) {
        match self {
            Self::Memory(memory) => {
                let mut memory = memory.lock().unwrap_or_else(PoisonError::into_inner);
                if memory
                    .documents
                    .insert(hash.to_owned(), document.to_owned())
                    .is_none()
                {
                    memory.order.push_back(hash.to_owned());
                }
                while memory.order.len() > MEMORY_CAPACITY {
                    if let Some(oldest) = memory.order.pop_front() {
                        memory.documents.remove(&oldest);
                    }
                }
            }
            Self::Redis { conn, prefix } => {
                let stored: redis::RedisResult<()> = redis::cmd("SET")
                    .arg(format!("{prefix}{hash}"))
                    .arg(document)
                    .arg("EX")
                    .arg(STORED_FOR_SECS)
                    .query_async(&mut conn.clone())
                    .await;
                if let Err(error) = stored {
                    tracing::warn!(%error, "persisted queries: could not store a document");
                }
            }
        }
    }
}

fn sha256(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extensions(hash: &str) -> Map<String, Json> {
        serde_json::json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn an_unknown_hash_is_not_found_until_registered_with_its_document() {
        let apq = PersistedQueries::in_memory();
        let query = "{ products { totalCount } }";
        let hash = sha256(query);
        let miss = apq.resolve(None, Some(&extensions(&hash)), None).await;
        assert_eq!(miss.map_err(|r| r.code), Err("PERSISTED_QUERY_NOT_FOUND"));
        let registered = apq
            .resolve(Some(query.into()), Some(&extensions(&hash)), None)
            .await;
        assert_eq!(registered, Ok(Some(query.to_owned())));
        let hit = apq.resolve(None, Some(&extensions(&hash)), None).await;
        assert_eq!(hit, Ok(Some(query.to_owned())));
        let other = sha256("{ me { id } }");
        let mismatch = apq
            .resolve(Some(query.into()), Some(&extensions(&other)), None)
            .await;
        assert_eq!(mismatch.map_err(|r| r.code), Err("PERSISTED_QUERY_HASH_MISMATCH"));
    }

    #[tokio::test]
    async fn memory_keeps_only_the_newest_documents() {
        let apq = PersistedQueries::in_memory();
        let first = "{ a0 }";
        apq.resolve(Some(first.into()), Some(&extensions(&sha256(first))), None)
            .await
            .expect("stored");
        for n in 1..=MEMORY_CAPACITY {
            let query = format!("{{ a{n} }}");
            apq.resolve(Some(query.clone()), Some(&extensions(&sha256(&query))), None)
                .await
                .expect("stored");
        }
        let evicted = apq.resolve(None, Some(&extensions(&sha256(first))), None).await;
        assert_eq!(evicted.map_err(|r| r.code), Err("PERSISTED_QUERY_NOT_FOUND"));
    }
}
