//! GraphQL over WebSocket at `/graphql/ws`: the `graphql-transport-ws`
//! protocol (github.com/enisdenjo/graphql-ws, PROTOCOL.md), which
//! graphql-ws, Apollo Client and urql speak. Written here rather than taken
//! from async-graphql 7.2, whose implementation closes with 1002/1011 where
//! the protocol says 4400/4401/4403, has no initialisation timeout and lets
//! a second `subscribe` silently replace one with the same id.
//!
//! A socket's life:
//! 1. The client must offer the `graphql-transport-ws` subprotocol (else
//!    4406) and send `connection_init` within [`WsLimits::init_timeout`]
//!    (else 4408), once (a second one: 4429). Its payload may carry
//!    `{"Authorization": "Bearer <access token>"}`: a valid token makes the
//!    socket that user's, an invalid one is refused (4403), none leaves it
//!    anonymous. A user may hold [`WsLimits::sockets_per_user`] sockets on
//!    one api instance (the next: 4403).
//! 2. After `connection_ack`, each `subscribe` runs one operation (a
//!    subscription, or a query or mutation answered once) under the
//!    socket's viewer: `next` per result, then `complete`; or one `error`
//!    when the operation is refused before it runs (validation, or the
//!    resolver's refusal, e.g. another customer's order). `subscribe`
//!    before the ack: 4401; an id still running: 4409; more than
//!    [`WsLimits::operations_per_socket`] at once: an `error` with
//!    RATE_LIMITED for that operation. The client's `complete` stops one.
//! 3. Anything that is not a protocol message: 4400. `ping` gets `pong`;
//!    the server itself sends `ping` every [`WsLimits::keepalive`], which
//!    keeps idle sockets open behind proxies that drop silent ones.
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message, Session};
use async_graphql::{Request, Variables};
use entity::ids::UserId;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::client_ip::ClientIp;
use super::routes::Endpoint;
use crate::auth::{RequestId, Viewer};
use crate::errors::code;

pub const SUBPROTOCOL: &str = "graphql-transport-ws";

/// What one socket may do.
#[derive(Debug, Clone, Copy)]
pub struct WsLimits {
    /// Time from the upgrade to `connection_init`.
    pub init_timeout: Duration,
    /// Operations running at once on one socket.
    pub operations_per_socket: usize,
    /// Sockets one user may hold on one api instance.
    pub sockets_per_user: usize,
    /// Sockets of anyone (anonymous ones too) open at once on one api
    /// instance (`MAX_SOCKETS`); an upgrade beyond it gets 503.
    pub sockets: usize,
    /// How often the server pings.
    pub keepalive: Duration,
}

impl Default for WsLimits {
    fn default() -> Self {
        Self {
            init_timeout: Duration::from_secs(3),
            operations_per_socket: 20,
            sockets_per_user: 10,
            sockets: 10_000,
            keepalive: Duration::from_secs(15),
        }
    }
}

/// Sockets open on this instance, in all and per user.
#[derive(Debug, Default)]
pub struct SocketCounts {
    open: AtomicUsize,
    per_user: Mutex<HashMap<UserId, usize>>,
}

/// One open socket of the instance's total; gives its place back when dropped.
struct OpenSocket(Arc<SocketCounts>);

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("storefront_websockets_open").decrement(1);
    }
}

/// One running subscription in `storefront_subscriptions_open`, for as
/// long as its task lives (a client's `complete` aborts the task).
struct OpenSubscription;

impl OpenSubscription {
    fn count() -> Self {
        metrics::gauge!("storefront_subscriptions_open").increment(1);
        Self
    }
}

impl Drop for OpenSubscription {
    fn drop(&mut self) {
        metrics::gauge!("storefront_subscriptions_open").decrement(1);
    }
}

impl SocketCounts {
    fn open(self: &Arc<Self>, limit: usize) -> Option<OpenSocket> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < limit).then_some(open + 1)
            })
            .ok()
            .map(|_| {
                metrics::gauge!("storefront_websockets_open").increment(1);
                OpenSocket(Arc::clone(self))
            })
    }

    fn take(self: &Arc<Self>, user: UserId, limit: usize) -> Option<SocketSlot> {
        let mut counts = self.per_user.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(user).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(SocketSlot {
            counts: Arc::clone(self),
            user,
        })
    }
}

/// One counted socket; gives its place back when dropped.
struct SocketSlot {
    counts: Arc<SocketCounts>,
    user: UserId,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut counts = self
            .counts
            .per_user
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

/// `GET /graphql/ws`: upgrades and runs the protocol on its own task.
///
/// # Errors
/// A handshake error (not a WebSocket upgrade) as actix's 400.
pub async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    endpoint: web::Data<Endpoint>,
) -> actix_web::Result<HttpResponse> {
    let offered = req
        .headers()
        .get_all(actix_web::http::header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim() == SUBPROTOCOL);
    let Some(open) = endpoint.sockets.open(endpoint.ws.sockets) else {
        tracing::warn!("overloaded: WebSocket upgrade refused (MAX_SOCKETS)");
        return Ok(super::shedding::overloaded(
            "too many open sockets: try again shortly",
        ));
    };
    let client = endpoint.trusted_proxies.client_of(&req);
    let (response, session, stream) = actix_ws::handle_with_protocols(&req, body, &[SUBPROTOCOL])?;
    let stream = stream.max_frame_size(endpoint.limits.max_body_bytes);
    actix_web::rt::spawn(async move {
        let _open = open;
        if offered {
            Socket::new(endpoint.into_inner(), session, client)
                .run(stream)
                .await;
        } else {
            close(session, 4406, "Subprotocol not acceptable").await;
        }
    });
    Ok(response)
}

async fn close(session: Session, code: u16, reason: &str) {
    let _ = session
        .close(Some(CloseReason {
            code: CloseCode::Other(code),
            description: Some(reason.to_owned()),
        }))
        .await;
}

/// A message from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Ping {
        #[serde(default)]
        payload: Option<Value>,
    },
    Pong {
        #[serde(default)]
        #[expect(dead_code, reason = "the protocol allows a payload; nothing reads it")]
        payload: Option<Value>,
    },
    Subscribe {
        id: String,
        payload: SubscribePayload,
    },
    Complete {
        id: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscribePayload {
    /// Empty when a persisted query is named by hash alone.
    #[serde(default)]
    query: String,
    #[serde(default)]
    extensions: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    variables: Option<Value>,
    #[serde(default)]
    operation_name: Option<String>,
}

/// A message an operation's task hands the socket. `op` is the operation's
/// number on this socket, so that a message still in the channel from an
/// operation the client completed is never taken for a later operation
/// that reuses its id; `last` for `error` and `complete`.
struct Outgoing {
    op: u64,
    id: String,
    message: Value,
    last: bool,
}

/// The `error` message that ends operation `id` before it ran.
fn error_message(id: &str, errors: Value) -> Value {
    json!({ "type": "error", "id": id, "payload": errors })
}

/// A running operation: its number and its task.
struct Running {
    op: u64,
    task: AbortHandle,
}

/// Why the socket closes.
struct Closing(u16, String);

struct Socket {
    endpoint: Arc<Endpoint>,
    session: Session,
    /// `None` until `connection_init` was accepted.
    viewer: Option<Viewer>,
    _slot: Option<SocketSlot>,
    running: HashMap<String, Running>,
    /// Operations started on this socket so far.
    started: u64,
    outgoing: (mpsc::Sender<Outgoing>, mpsc::Receiver<Outgoing>),
    /// The `Authorization` value of `connection_init`, checked again at
    /// each `subscribe`: a socket does not outlive its access token.
    authorization: Option<String>,
    /// When the client last sent anything (a `pong` included).
    last_heard: tokio::time::Instant,
    /// Who is on the other end, for rate limits.
    client: Option<ClientIp>,
}

impl Socket {
    fn new(endpoint: Arc<Endpoint>, session: Session, client: Option<ClientIp>) -> Self {
        Self {
            endpoint,
            session,
            viewer: None,
            _slot: None,
            running: HashMap::new(),
            started: 0,
            outgoing: mpsc::channel(64),
            authorization: None,
            last_heard: tokio::time::Instant::now(),
            client,
        }
    }

    async fn run(mut self, mut stream: actix_ws::MessageStream) {
        let limits = self.endpoint.ws;
        let init_deadline = tokio::time::sleep(limits.init_timeout);
        tokio::pin!(init_deadline);
        let mut keepalive =
            tokio::time::interval_at(tokio::time::Instant::now() + limits.keepalive, limits.keepalive);
        let closing = loop {
            tokio::select! {
                () = &mut init_deadline, if self.viewer.is_none() => {
                    break Some(Closing(4408, "Connection initialisation timeout".into()));
                }
                _ = keepalive.tick() => {
                    // A client that answers no ping (graphql-ws answers each
                    // one) for three rounds is gone, or not reading.
                    if self.last_heard.elapsed() > limits.keepalive * 3 {
                        break Some(Closing(4408, "Keepalive timeout: no pong".into()));
                    }
                    if self.send(json!({ "type": "ping" })).await.is_err() {
                        break None;
                    }
                }
                Some(out) = self.outgoing.1.recv() => {
                    if self.forward(out).await.is_err() {
                        break None;
                    }
                }
                message = stream.recv() => {
                    self.last_heard = tokio::time::Instant::now();
                    let text = match message {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Ping(bytes))) => {
                            if self.session.pong(&bytes).await.is_err() {
                                break None;
                            }
                            continue;
                        }
                        Some(Ok(Message::Pong(_) | Message::Nop)) => continue,
                        Some(Ok(Message::Binary(_) | Message::Continuation(_))) => {
                            break Some(Closing(4400, "Binary messages are not part of the protocol".into()));
                        }
                        Some(Ok(Message::Close(_))) | None => break None,
                        Some(Err(error)) => break Some(Closing(4400, format!("Invalid frame: {error}"))),
                    };
                    match self.handle(&text).await {
                        Ok(()) => {}
                        Err(Some(closing)) => break Some(closing),
                        Err(None) => break None,
                    }
                }
            }
        };
        for (_, running) in self.running.drain() {
            running.task.abort();
        }
        match closing {
            Some(Closing(code, reason)) => close(self.session, code, &reason).await,
            None => {
                let _ = self.session.close(None).await;
            }
        }
    }

    async fn send(&mut self, message: Value) -> Result<(), actix_ws::Closed> {
        self.session.text(message.to_string()).await
    }

    /// Handles one text message; `Err(Some(_))` closes with that code,
    /// `Err(None)` when the socket is gone.
    async fn handle(&mut self, text: &str) -> Result<(), Option<Closing>> {
        let message: ClientMessage = serde_json::from_str(text)
            .map_err(|error| Some(Closing(4400, format!("Invalid message received: {error}"))))?;
        match message {
            ClientMessage::ConnectionInit { payload } => {
                if self.viewer.is_some() {
                    return Err(Some(Closing(4429, "Too many initialisation requests".into())));
                }
                self.authorization = authorization(payload.as_ref()).map(str::to_owned);
                let state = &self.endpoint.state;
                let viewer = state
                    .sessions
                    .viewer(&state.tokens, self.authorization.as_deref())
                    .await;
                match viewer {
                    Viewer::Invalid => {
                        return Err(Some(Closing(
                            4403,
                            "Forbidden: invalid or expired access token".into(),
                        )));
                    }
                    Viewer::User(actor) => {
                        let limit = self.endpoint.ws.sockets_per_user;
                        let Some(slot) = self.endpoint.sockets.take(actor.user_id, limit) else {
                            return Err(Some(Closing(
                                4403,
                                format!("Forbidden: more than {limit} open sockets for this user"),
                            )));
                        };
                        self._slot = Some(slot);
                    }
                    Viewer::Anonymous => {}
                }
                self.viewer = Some(viewer);
                self.send(json!({ "type": "connection_ack" }))
                    .await
                    .map_err(|_| None)
            }
            ClientMessage::Ping { payload } => {
                let mut pong = json!({ "type": "pong" });
                if let Some(payload) = payload {
                    pong["payload"] = payload;
                }
                self.send(pong).await.map_err(|_| None)
            }
            ClientMessage::Pong { .. } => Ok(()),
            ClientMessage::Subscribe { id, payload } => {
                let Some(viewer) = self.viewer else {
                    return Err(Some(Closing(4401, "Unauthorized".into())));
                };
                let state = &self.endpoint.state;
                if matches!(viewer, Viewer::User(_))
                    && state
                        .sessions
                        .viewer(&state.tokens, self.authorization.as_deref())
                        .await
                        == Viewer::Invalid
                {
                    return Err(Some(Closing(
                        4403,
                        "Forbidden: the access token expired or its session ended; reconnect with a new one"
                            .into(),
                    )));
                }
                if self.running.contains_key(&id) {
                    return Err(Some(Closing(4409, format!("Subscriber for {id} already exists"))));
                }
                if self.running.len() >= self.endpoint.ws.operations_per_socket {
                    let errors = json!([{
                        "message": format!("at most {} operations may run on one socket", self.endpoint.ws.operations_per_socket),
                        "extensions": { "code": code::RATE_LIMITED },
                    }]);
                    return self.send(error_message(&id, errors)).await.map_err(|_| None);
                }
                // Trusted documents and persisted queries rule sockets too.
                let resolved = self
                    .endpoint
                    .persisted
                    .resolve(
                        Some(payload.query.clone()).filter(|query| !query.is_empty()),
                        payload.extensions.as_ref(),
                        self.client.as_ref(),
                    )
                    .await;
                let query = match resolved {
                    Ok(query) => query.unwrap_or_default(),
                    Err(refusal) => {
                        let errors = json!([refusal.to_json()]);
                        return self.send(error_message(&id, errors)).await.map_err(|_| None);
                    }
                };
                self.started += 1;
                let op = self.started;
                let task = self.start(op, id.clone(), query, payload, viewer);
                self.running.insert(id, Running { op, task });
                Ok(())
            }
            ClientMessage::Complete { id } => {
                if let Some(running) = self.running.remove(&id) {
                    running.task.abort();
                }
                Ok(())
            }
        }
    }

    /// Runs one operation on its own task, its results sent to the socket.
    fn start(
        &self,
        op: u64,
        id: String,
        query: String,
        payload: SubscribePayload,
        viewer: Viewer,
    ) -> AbortHandle {
        let mut request = Request::new(query)
            .variables(Variables::from_json(payload.variables.unwrap_or_default()))
            .data(viewer)
            .data(RequestId(uuid::Uuid::now_v7().to_string()));
        if let Some(client) = self.client {
            request = request.data(client);
        }
        if let Some(name) = payload.operation_name {
            request = request.operation_name(name);
        }
        let endpoint = Arc::clone(&self.endpoint);
        let outgoing = self.outgoing.0.clone();
        let open = OpenSubscription::count();
        tokio::spawn(async move {
            let _open = open;
            // Depth-limited, costed and charged like an HTTP request
            // (`operation`); a refusal is the first result.
            let operations = &endpoint.operations;
            let (mut results, mut owed) = operations.stream(request).await;
            let mut first = true;
            while let Some(mut response) = results.next().await {
                if first {
                    operations.first(owed.take(), &mut response).await;
                } else {
                    crate::errors::tag_request_errors(&mut response);
                }
                let refused =
                    first && response.data == async_graphql::Value::Null && !response.errors.is_empty();
                first = false;
                let (message, last) = if refused {
                    let errors = serde_json::to_value(&response.errors).unwrap_or_default();
                    (error_message(&id, errors), true)
                } else {
                    let payload = serde_json::to_value(&response).unwrap_or_default();
                    (json!({ "type": "next", "id": id, "payload": payload }), false)
                };
                let sent = outgoing
                    .send(Outgoing {
                        op,
                        id: id.clone(),
                        message,
                        last,
                    })
                    .await;
                if sent.is_err() || last {
                    return;
                }
            }
            let message = json!({ "type": "complete", "id": id });
            let _ = outgoing
                .send(Outgoing {
                    op,
                    id,
                    message,
                    last: true,
                })
                .await;
        })
        .abort_handle()
    }

    /// Sends an operation's message, unless the client completed it already.
    async fn forward(&mut self, out: Outgoing) -> Result<(), actix_ws::Closed> {
        if self
            .running
            .get(&out.id)
            .is_none_or(|running| running.op != out.op)
        {
            return Ok(());
        }
        if out.last {
            self.running.remove(&out.id);
        }
        self.send(out.message).await
    }
}

/// The `Authorization` value of a `connection_init` payload (either case).
fn authorization(payload: Option<&Value>) -> Option<&str> {
    let payload = payload?.as_object()?;
    payload
        .get("Authorization")
        .or_else(|| payload.get("authorization"))
        .and_then(Value::as_str)
}
