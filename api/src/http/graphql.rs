//! `GET`/`POST /graphql` per the GraphQL-over-HTTP draft, for any schema.
//!
//! Status codes:
//! - 405 for a method other than GET and POST (`Allow: GET, POST`), and for a
//!   mutation or subscription sent with GET (`Allow: POST`);
//! - 406 when `Accept` allows neither response type (see `negotiate`);
//! - 415 for a POST whose `Content-Type` is not `application/json` (a
//!   `charset` other than UTF-8 included, a missing header included);
//! - 413 for a body over [`Limits::max_body_bytes`]: refused from
//!   `Content-Length` before reading, or as soon as the bytes read pass it;
//! - 400 for a request that is not a well-formed GraphQL-over-HTTP request
//!   (not JSON, not an object, a batch array, `query` missing or not a
//!   string, `variables`/`extensions` not objects, ...);
//! - for executed requests, [`respond`]: with `application/json` always 200;
//!   with `application/graphql-response+json` 400 for a request error (the
//!   document did not parse or validate, the operation or variables could
//!   not be determined) and 200 otherwise, partial data included;
//! - 429 with `Retry-After`, in either format, for a request that rate
//!   limits refused as a whole (a persisted-query registration over its
//!   limit, a request its client's query cost bucket cannot pay for, or a
//!   request whose every root field was refused RATE_LIMITED:
//!   [`respond_limited`]).
//!
//! What the client sees of a refused request is a GraphQL-shaped body,
//! `{"errors":[{"message":"...","extensions":{"code":"..."}}]}`, whose code
//! names the HTTP condition: `BAD_REQUEST`, `METHOD_NOT_ALLOWED`,
//! `NOT_ACCEPTABLE`, `PAYLOAD_TOO_LARGE`, `UNSUPPORTED_MEDIA_TYPE`. Nothing
//! in it comes from the server's internals: messages describe the request.

use std::collections::BTreeMap;

use actix_web::{
    HttpMessage, HttpRequest, HttpResponse,
    http::{
        Method, StatusCode,
        header::{self, HeaderName, HeaderValue},
    },
    mime, web,
};
use async_graphql::{
    Extensions, ServerError, Value, Variables,
    parser::{
        parse_query,
        types::{ExecutableDocument, OperationType},
    },
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::client_ip::ClientIp;
use super::negotiate;
use super::persisted::{PersistedQueries, Refusal};

/// The media type of a GraphQL response body, chosen from `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// `application/graphql-response+json`: request errors get a 4xx status.
    GraphqlResponseJson,
    /// `application/json`, for legacy clients: every executed request gets
    /// 200, because a 4xx with this type may come from any proxy.
    Json,
}

impl ResponseFormat {
    /// The `Content-Type` header value, charset included.
    #[must_use]
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        }
    }
}

/// How much of a request the transport reads before refusing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest POST body, in bytes, after any `Content-Encoding` is undone:
    /// a larger one is answered 413 without being read to its end.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    /// 1 MiB: far above any hand-written query, far below what would hurt.
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Parses a GraphQL-over-HTTP request (a GET query string or a POST JSON
/// body) and negotiates the response format from its `Accept` header.
///
/// # Errors
///
/// A finished HTTP response for a request that must not be executed: 400,
/// 405, 406, 413 or 415 (see the module docs), with a GraphQL-shaped JSON
/// body.
pub async fn parse_request(
    req: &HttpRequest,
    payload: web::Payload,
    limits: &Limits,
    persisted: &PersistedQueries,
) -> Result<(async_graphql::Request, ResponseFormat), HttpResponse> {
    let format = negotiate::response_format(req);
    // A refusal is written in the client's format when it has one.
    let error_format = format.unwrap_or(ResponseFormat::Json);
    let is_get = match *req.method() {
        Method::GET => true,
        Method::POST => false,
        _ => return Err(RequestError::MethodNotAllowed.into_response(error_format)),
    };
    let format = format.ok_or_else(|| RequestError::NotAcceptable.into_response(error_format))?;
    let request = if is_get {
        from_get(req, persisted).await
    } else {
        from_post(req, payload, limits, persisted).await
    };
    match request {
        Ok(request) => Ok((request, format)),
        Err(error) => Err(error.into_response(format)),
    }
}

/// Builds the HTTP response for an executed request: status per `format`
/// (see the module docs), `Content-Type` of `format`, the `Cache-Control`
/// the schema computed for a successful response, and any headers the
/// resolvers added.
#[must_use]
pub fn respond(response: async_graphql::Response, format: ResponseFormat) -> HttpResponse {
    let request_error = is_request_error(&response);
    let body = if request_error {
        // The GraphQL spec: an error raised before execution leaves no `data`
        // entry at all (async-graphql would write `"data": null`).
        serde_json::to_vec(&WithoutData {
            errors: &response.errors,
            extensions: &response.extensions,
        })
    } else {
        serde_json::to_vec(&response)
    };
    let body = match body {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(
                error = &error as &dyn std::error::Error,
                "cannot serialize a GraphQL response"
            );
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                format,
                "internal error",
                "INTERNAL",
            );
        }
    };

    let status = if request_error && format == ResponseFormat::GraphqlResponseJson {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut builder = HttpResponse::build(status);
    builder
        .insert_header((header::CONTENT_TYPE, format.content_type()))
        .insert_header((header::VARY, "Accept"));
    // An answer may carry tokens or private data: no cache keeps it, unless
    // every field it read declared itself cacheable.
    match response.cache_control.value().filter(|_| response.is_ok()) {
        Some(cache_control) => builder.insert_header((header::CACHE_CONTROL, cache_control)),
        None => builder.insert_header((header::CACHE_CONTROL, "no-store")),
    };
    // async-graphql speaks `http` 1.x, actix-web 4 `http` 0.2: copy by bytes.
    for (name, value) in &response.http_headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            builder.append_header((name, value));
        }
    }
    builder.body(body)
}

/// [`respond`], except for a request that rate limits refused as a whole
/// (see [`rate_limited_whole`]): 429 with `Retry-After`, in either format.
/// `root_fields`: how many root fields (response keys) the operation that
/// ran selects.
#[must_use]
pub fn respond_limited(
    response: async_graphql::Response,
    format: ResponseFormat,
    root_fields: usize,
) -> HttpResponse {
    let refused = rate_limited_whole(&response, root_fields);
    let mut http = respond(response, format);
    if let Some(retry_after) = refused {
        *http.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
            http.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    http
}

/// The seconds to wait (the longest `retryAfter`) when rate limits refused
/// the whole request: every error is RATE_LIMITED and either it was refused
/// before execution (errors without a path) or each of its `root_fields`
/// was refused. A request refused only in part (`a: placeOrder` placed,
/// `b: placeOrder` refused) is answered as usual: what ran, ran.
#[must_use]
pub fn rate_limited_whole(response: &async_graphql::Response, root_fields: usize) -> Option<u64> {
    if response.errors.is_empty() {
        return None;
    }
    let mut longest = 0;
    let mut refused_fields = std::collections::HashSet::new();
    for error in &response.errors {
        let extensions = error.extensions.as_ref()?;
        if extensions.get("code") != Some(&Value::from(crate::errors::code::RATE_LIMITED)) {
            return None;
        }
        if let Some(root) = error.path.first() {
            refused_fields.insert(format!("{root:?}"));
        }
        let retry_after = match extensions.get("retryAfter") {
            Some(Value::Number(secs)) => secs.as_u64().unwrap_or(1),
            _ => 1,
        };
        longest = longest.max(retry_after);
    }
    let whole = refused_fields.is_empty() || refused_fields.len() >= root_fields;
    whole.then_some(longest.max(1))
}

/// A request error in the GraphQL spec's sense: nothing was executed, so
/// there is no data and no error points into it. A field error on a
/// non-null root field also leaves `data` null, but its error has a path.
fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// A response to a request error, serialized without `data`.
#[derive(Serialize)]
struct WithoutData<'a> {
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extensions: &'a BTreeMap<String, Value>,
}

/// Why a request was refused before execution.
#[derive(Debug, thiserror::Error)]
enum RequestError {
    #[error("GraphQL requests use GET or POST")]
    MethodNotAllowed,
    #[error("a {0} cannot be sent with GET: use POST")]
    NotSafeOverGet(&'static str),
    #[error("the Accept header allows neither application/graphql-response+json nor application/json")]
    NotAcceptable,
    #[error("the request body must be application/json (UTF-8), not {0}")]
    UnsupportedMediaType(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    BadRequest(String),
    #[error("{}", .0.message)]
    Persisted(Refusal),
}

impl RequestError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    fn into_response(self, format: ResponseFormat) -> HttpResponse {
        if let Self::Persisted(refusal) = &self
            && let Some(retry_after) = refusal.retry_after
        {
            return too_many_requests(format, serde_json::json!([refusal.to_json()]), retry_after);
        }
        let (status, code) = match self {
            Self::MethodNotAllowed | Self::NotSafeOverGet(_) => {
                (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED")
            }
            Self::NotAcceptable => (StatusCode::NOT_ACCEPTABLE, "NOT_ACCEPTABLE"),
            Self::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            // Like a document that fails validation: 4xx only for a client
            // that understands application/graphql-response+json.
            Self::Persisted(ref refusal) => match format {
                ResponseFormat::GraphqlResponseJson => (StatusCode::BAD_REQUEST, refusal.code),
                ResponseFormat::Json => (StatusCode::OK, refusal.code),
            },
        };
        let mut response = error_response(status, format, &self.to_string(), code);
        let allow = match self {
            Self::MethodNotAllowed => Some("GET, POST"),
            Self::NotSafeOverGet(_) => Some("POST"),
            _ => None,
        };
        if let Some(allow) = allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

/// 429 with `Retry-After`: the answer to a request refused as a whole by
/// a rate limit, whatever the format (a client must back off, and a 200
/// would tell a proxy or a generic client that all went well).
fn too_many_requests(format: ResponseFormat, errors: Json, retry_after: u64) -> HttpResponse {
    HttpResponse::build(StatusCode::TOO_MANY_REQUESTS)
        .insert_header((header::CONTENT_TYPE, format.content_type()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::RETRY_AFTER, retry_after.to_string()))
        .body(serde_json::json!({ "errors": errors }).to_string())
}

fn error_response(status: StatusCode, format: ResponseFormat, message: &str, code: &str) -> HttpResponse {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    });
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, format.content_type()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.to_string())
}

/// The parameters of a GET request, as the draft spells them.
#[derive(Deserialize)]
struct QueryString {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

/// A GET request, its persisted query (if it names one) looked up.
async fn from_get(
    req: &HttpRequest,
    persisted: &PersistedQueries,
) -> Result<async_graphql::Request, RequestError> {
    let mut params = get_parameters(req.query_string())?;
    let client = req.extensions().get::<ClientIp>().copied();
    params.query = resolve(
        persisted,
        params.query.take(),
        params.extensions.as_ref(),
        client.as_ref(),
    )
    .await?;
    from_parameters(params)
}

/// A POST request, its persisted query (if it names one) looked up.
async fn from_post(
    req: &HttpRequest,
    payload: web::Payload,
    limits: &Limits,
    persisted: &PersistedQueries,
) -> Result<async_graphql::Request, RequestError> {
    let mut object = read_body(req, payload, limits).await?;
    // A `query` that is not a string stays where it is, for `from_object`
    // to refuse.
    let query = match object.remove("query") {
        Some(Json::String(query)) => Some(query),
        other => {
            if let Some(other) = other {
                object.insert("query".into(), other);
            }
            None
        }
    };
    let extensions = match object.get("extensions") {
        Some(Json::Object(extensions)) => Some(extensions),
        _ => None,
    };
    let client = req.extensions().get::<ClientIp>().copied();
    if let Some(query) = resolve(persisted, query, extensions, client.as_ref()).await? {
        object.insert("query".into(), Json::String(query));
    }
    from_object(object)
}

/// The persisted query of a request, if it names one (see `persisted`).
async fn resolve(
    persisted: &PersistedQueries,
    query: Option<String>,
    extensions: Option<&Map<String, Json>>,
    client: Option<&ClientIp>,
) -> Result<Option<String>, RequestError> {
    persisted
        .resolve(query, extensions, client)
        .await
        .map_err(RequestError::Persisted)
}

/// The GET parameters, with `extensions` parsed (a persisted query's hash
/// travels there).
struct GetParameters {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<Map<String, Json>>,
}

fn get_parameters(query_string: &str) -> Result<GetParameters, RequestError> {
    let params = web::Query::<QueryString>::from_query(query_string)
        .map_err(|error| RequestError::bad_request(format!("invalid query string: {error}")))?
        .into_inner();
    let extensions = params
        .extensions
        .map(|json| json_parameter(&json, "extensions"))
        .transpose()?
        .flatten();
    Ok(GetParameters {
        query: params.query,
        operation_name: params.operation_name,
        variables: params.variables,
        extensions,
    })
}

#[cfg(test)]
fn from_query_string(query_string: &str) -> Result<async_graphql::Request, RequestError> {
    from_parameters(get_parameters(query_string)?)
}

fn from_parameters(params: GetParameters) -> Result<async_graphql::Request, RequestError> {
    let query = params
        .query
        .ok_or_else(|| RequestError::bad_request("the `query` parameter is missing"))?;
    let variables = params
        .variables
        .map(|json| json_parameter(&json, "variables"))
        .transpose()?
        .flatten();
    let extensions = params.extensions;

    // Only a query is safe: find the operation the request names. A document
    // that does not parse, or names no operation we can find, is left for
    // the schema to report as the request error it is.
    if let Ok(document) = parse_query(&query) {
        match operation_type(&document, params.operation_name.as_deref()) {
            Some(OperationType::Mutation) => return Err(RequestError::NotSafeOverGet("mutation")),
            Some(OperationType::Subscription) => {
                return Err(RequestError::NotSafeOverGet("subscription"));
            }
            Some(OperationType::Query) | None => {}
        }
    }
    build_request(query, params.operation_name, variables, extensions)
}

/// A `variables` or `extensions` GET parameter: a JSON object, or `null`.
fn json_parameter(json: &str, name: &str) -> Result<Option<Map<String, Json>>, RequestError> {
    match serde_json::from_str(json) {
        Ok(Json::Object(map)) => Ok(Some(map)),
        Ok(Json::Null) => Ok(None),
        Ok(_) => Err(RequestError::bad_request(format!(
            "the `{name}` parameter must be a JSON object"
        ))),
        Err(error) => Err(RequestError::bad_request(format!(
            "the `{name}` parameter is not JSON: {error}"
        ))),
    }
}

/// The type of the operation that `operation_name` selects, as async-graphql
/// will select it; `None` when there is no such operation.
fn operation_type(document: &ExecutableDocument, operation_name: Option<&str>) -> Option<OperationType> {
    crate::cost::model::operation(document, operation_name).map(|operation| operation.node.ty)
}

/// The body of a POST, read within the size limit, as a JSON object.
async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limits: &Limits,
) -> Result<Map<String, Json>, RequestError> {
    check_content_type(req)?;
    let limit = limits.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(RequestError::PayloadTooLarge(limit));
    }
    let body = match payload.to_bytes_limited(limit).await {
        Ok(Ok(body)) => body,
        Ok(Err(error)) => {
            return Err(RequestError::bad_request(format!(
                "cannot read the request body: {error}"
            )));
        }
        Err(_) => return Err(RequestError::PayloadTooLarge(limit)),
    };
    json_body(&body)
}

fn check_content_type(req: &HttpRequest) -> Result<(), RequestError> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Err(RequestError::UnsupportedMediaType(
            "a body without Content-Type".to_owned(),
        ));
    };
    let shown = || String::from_utf8_lossy(value.as_bytes()).into_owned();
    let Ok(Some(mime)) = req.mime_type() else {
        return Err(RequestError::UnsupportedMediaType(shown()));
    };
    let utf8 = mime
        .get_param(mime::CHARSET)
        .is_none_or(|charset| charset.as_str().eq_ignore_ascii_case("utf-8"));
    if mime.type_() == mime::APPLICATION && mime.subtype() == mime::JSON && mime.suffix().is_none() && utf8 {
        Ok(())
    } else {
        Err(RequestError::UnsupportedMediaType(shown()))
    }
}

#[cfg(test)]
fn from_json_body(body: &[u8]) -> Result<async_graphql::Request, RequestError> {
    from_object(json_body(body)?)
}

fn json_body(body: &[u8]) -> Result<Map<String, Json>, RequestError> {
    let json: Json = serde_json::from_slice(body)
        .map_err(|error| RequestError::bad_request(format!("the body is not JSON: {error}")))?;
    match json {
        Json::Object(object) => Ok(object),
        Json::Array(_) => Err(RequestError::bad_request(
            "batched requests (a JSON array) are not supported: send one request object",
        )),
        _ => Err(RequestError::bad_request(
            "the body must be a JSON object with a `query`",
        )),
    }
}

fn from_object(mut object: Map<String, Json>) -> Result<async_graphql::Request, RequestError> {
    // The draft: `null` for an optional parameter is the same as leaving it out.
    let query = match object.remove("query") {
        Some(Json::String(query)) => query,
        None | Some(Json::Null) => return Err(RequestError::bad_request("`query` is missing")),
        Some(_) => return Err(RequestError::bad_request("`query` must be a string")),
    };
    let operation_name = match object.remove("operationName") {
        Some(Json::String(name)) => Some(name),
        None | Some(Json::Null) => None,
        Some(_) => return Err(RequestError::bad_request("`operationName` must be a string")),
    };
    let variables = json_object(object.remove("variables"), "variables")?;
    let extensions = json_object(object.remove("extensions"), "extensions")?;
    build_request(query, operation_name, variables, extensions)
}

fn json_object(value: Option<Json>, name: &str) -> Result<Option<Map<String, Json>>, RequestError> {
    match value {
        Some(Json::Object(map)) => Ok(Some(map)),
        None | Some(Json::Null) => Ok(None),
        Some(_) => Err(RequestError::bad_request(format!("`{name}` must be an object"))),
    }
}

fn build_request(
    query: String,
    operation_name: Option<String>,
    variables: Option<Map<String, Json>>,
    extensions: Option<Map<String, Json>>,
) -> Result<async_graphql::Request, RequestError> {
    let mut request = async_graphql::Request::new(query);
    // The draft (for GET): an empty operationName is the same as none.
    if let Some(name) = operation_name.filter(|name| !name.is_empty()) {
        request = request.operation_name(name);
    }
    if let Some(variables) = variables {
        request = request.variables(Variables::from_json(Json::Object(variables)));
    }
    if let Some(extensions) = extensions {
        let extensions = extensions
            .into_iter()
            .map(|(name, value)| Ok((name, Value::from_json(value)?)))
            .collect::<Result<_, serde_json::Error>>()
            .map_err(|error| RequestError::bad_request(format!("`extensions` is not valid: {error}")))?;
        request.extensions = Extensions(extensions);
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> String {
        match from_json_body(body.as_bytes()) {
            Ok(_) => panic!("{body} was accepted"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn a_json_body_becomes_a_request() {
        let request = from_json_body(
            br#"{"query":"query Q($n: Int) { hello }","operationName":"Q","variables":{"n":1},"extensions":{"trace":true}}"#,
        )
        .expect("a well-formed request");
        assert_eq!(request.query, "query Q($n: Int) { hello }");
        assert_eq!(request.operation_name.as_deref(), Some("Q"));
        assert_eq!(
            request.variables,
            Variables::from_json(serde_json::json!({ "n": 1 }))
        );
        assert_eq!(request.extensions.0.get("trace"), Some(&Value::Boolean(true)));
    }

    #[test]
    fn null_optional_parameters_count_as_absent() {
        let request = from_json_body(
            br#"{"query":"{ hello }","operationName":null,"variables":null,"extensions":null}"#,
        )
        .expect("a well-formed request");
        assert_eq!(request.operation_name, None);
    }

    #[test]
    fn malformed_bodies_are_refused_with_a_reason() {
        assert!(refused("NONSENSE").contains("not JSON"));
        assert!(refused(r#"{"query":"#).contains("not JSON"));
        assert!(refused(r#"[{"query":"{ hello }"}]"#).contains("batched"));
        assert!(refused(r#""{ hello }""#).contains("JSON object"));
        assert!(refused(r#"{"qeury":"{ hello }"}"#).contains("`query` is missing"));
        assert!(refused(r#"{"query":1}"#).contains("`query` must be a string"));
        assert!(refused(r#"{"query":"{ a }","variables":[7]}"#).contains("`variables`"));
        assert!(refused(r#"{"query":"{ a }","operationName":7}"#).contains("`operationName`"));
        assert!(refused(r#"{"query":"{ a }","extensions":"x"}"#).contains("`extensions`"));
    }

    #[test]
    fn the_operation_type_follows_the_operation_name() {
        let document = parse_query("query A { a } mutation B { b }").expect("the document parses");
        assert_eq!(operation_type(&document, Some("A")), Some(OperationType::Query));
        assert_eq!(
            operation_type(&document, Some("B")),
            Some(OperationType::Mutation)
        );
        assert_eq!(operation_type(&document, Some("C")), None);
        assert_eq!(operation_type(&document, None), None);

        let single = parse_query("mutation { b }").expect("the document parses");
        assert_eq!(operation_type(&single, None), Some(OperationType::Mutation));
        let named = parse_query("mutation M { b }").expect("the document parses");
        assert_eq!(operation_type(&named, Some("")), Some(OperationType::Mutation));
    }

    #[test]
    fn get_parameters_use_the_drafts_names() {
        let request = from_query_string(
            "query=query%20Q%20%7B%20hello%20%7D&operationName=Q&variables=%7B%22n%22%3A1%7D",
        )
        .expect("a well-formed request");
        assert_eq!(request.operation_name.as_deref(), Some("Q"));
        assert_eq!(
            request.variables,
            Variables::from_json(serde_json::json!({ "n": 1 }))
        );
    }

    #[test]
    fn a_get_mutation_is_refused_but_a_get_query_beside_one_is_not() {
        let document = "query%20A%20%7B%20a%20%7D%20mutation%20B%20%7B%20b%20%7D";
        assert!(matches!(
            from_query_string(&format!("query={document}&operationName=B")),
            Err(RequestError::NotSafeOverGet("mutation"))
        ));
        assert!(from_query_string(&format!("query={document}&operationName=A")).is_ok());
    }

    #[test]
    fn request_errors_are_told_from_field_errors() {
        let mut request_error = async_graphql::Response::default();
        request_error.errors = vec![ServerError::new("unknown field", None)];
        assert!(is_request_error(&request_error));

        let mut field_error = async_graphql::Response::default();
        let mut error = ServerError::new("boom", None);
        error.path = vec![async_graphql::PathSegment::Field("product".to_owned())];
        field_error.errors = vec![error];
        assert!(!is_request_error(&field_error));
    }
}
