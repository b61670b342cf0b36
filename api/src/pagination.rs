//! Relay connection plumbing shared by every list: `PageInfo` and opaque
//! cursors (base64url of a small JSON document; clients must not parse them).
use async_graphql::SimpleObject;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Serialize, de::DeserializeOwned};

use crate::errors::{client_error, code};

/// Relay's page information; only forward pagination is offered.
#[derive(SimpleObject, Debug, Clone)]
pub struct PageInfo {
    pub has_next_page: bool,
    /// Always false: lists page forward only (`first`/`after`).
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

impl PageInfo {
    #[must_use]
    pub fn new(cursors: &[String], has_next_page: bool, has_previous_page: bool) -> Self {
        Self {
            has_next_page,
            has_previous_page,
            start_cursor: cursors.first().cloned(),
            end_cursor: cursors.last().cloned(),
        }
    }
}

/// Encodes a cursor value.
#[must_use]
pub fn encode_cursor<T: Serialize>(value: &T) -> String {
    // Serialising a plain struct of strings and numbers cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// Decodes a client's `after` cursor.
///
/// # Errors
/// BAD_USER_INPUT when the cursor was not made by this server.
pub fn decode_cursor<T: DeserializeOwned>(cursor: &str) -> async_graphql::Result<T> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| client_error(code::BAD_USER_INPUT, "invalid cursor in `after`"))
}
