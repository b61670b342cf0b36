//! Load shedding: at most `MAX_IN_FLIGHT` requests run at once in one api
//! process; the next one is answered at once with 503 and `Retry-After`,
//! instead of waiting in line until the client gives up. A request either
//! runs to its end or is refused before anything happened: a refused
//! `placeOrder` placed nothing, and the client may simply send it again
//! (with the same idempotency key).
//!
//! `/healthz` and `/readyz` are never shed (an orchestrator must not kill a
//! busy process), nor the WebSocket upgrade (it returns at once; the socket
//! lives on its own task, bounded per user).
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, web};
use tokio::sync::Semaphore;

/// Seconds a refused client is asked to wait.
pub const RETRY_AFTER_SECS: u32 = 1;

/// The requests allowed to run at once.
#[derive(Clone)]
pub struct InFlight(Arc<Semaphore>);

impl InFlight {
    #[must_use]
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max)))
    }
}

/// 503 with `Retry-After` and a GraphQL-shaped OVERLOADED error saying
/// `message`: the answer to anything refused for lack of room.
#[must_use]
pub fn overloaded(message: &str) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header(("Retry-After", RETRY_AFTER_SECS.to_string()))
        .content_type("application/json")
        .body(
            serde_json::json!({ "errors": [{
                "message": message,
                "extensions": { "code": "OVERLOADED", "retryAfter": RETRY_AFTER_SECS },
            }] })
            .to_string(),
        )
}

/// The middleware (`middleware::from_fn(shedding::shed)`), with the
/// [`InFlight`] bound in the app data.
///
/// # Errors
/// The inner service's.
pub async fn shed(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let exempt = matches!(req.path(), "/healthz" | "/readyz" | "/graphql/ws");
    let bound = req
        .app_data::<web::Data<InFlight>>()
        .map(|data| Arc::clone(&data.0));
    let permit = match bound {
        Some(bound) if !exempt => match bound.try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                tracing::warn!(path = req.path(), "overloaded: request shed with 503");
                let refusal = overloaded("the server is busy: try again shortly");
                return Ok(req.into_response(refusal).map_into_right_body());
            }
        },
        _ => None,
    };
    let response = next.call(req).await;
    drop(permit);
    Ok(response?.map_into_left_body())
}
