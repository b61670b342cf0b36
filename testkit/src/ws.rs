//! A `graphql-transport-ws` client for tests: speaks the protocol frame by
//! frame, so tests can send what a broken client would and see the close
//! codes, and answers the server's pings as graphql-ws does.
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for the server's next frame.
const WAIT: Duration = Duration::from_secs(30);

/// What the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A protocol message (never a server `ping`: those are answered).
    Message(Value),
    /// The server closed the socket with this code and reason.
    Closed(u16, String),
}

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
    /// How many `ping`s the server sent (each answered with `pong`).
    pub pings_answered: usize,
}

impl WsClient {
    /// Opens `ws://…/graphql/ws` of the api at `address` (`http://host:port`),
    /// offering `protocol` (`None`: no subprotocol at all).
    pub async fn connect(address: &str, protocol: Option<&str>) -> Self {
        let url = format!("{}/graphql/ws", address.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().expect("a WebSocket request");
        if let Some(protocol) = protocol {
            request.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_str(protocol).expect("a header value"),
            );
        }
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the WebSocket upgrade succeeds");
        Self {
            socket,
            pings_answered: 0,
        }
    }

    /// Opens a `graphql-transport-ws` socket and completes the handshake,
    /// with `Authorization: Bearer <token>` in the init payload when given.
    pub async fn open(address: &str, token: Option<&str>) -> Self {
        let mut client = Self::connect(address, Some("graphql-transport-ws")).await;
        client.init(token).await;
        assert_eq!(
            client.recv().await,
            Frame::Message(json!({ "type": "connection_ack" })),
            "the server acknowledges the connection"
        );
        client
    }

    pub async fn init(&mut self, token: Option<&str>) {
        let message = match token {
            Some(token) => {
                json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })
            }
            None => json!({ "type": "connection_init" }),
        };
        self.send(&message).await;
    }

    pub async fn send(&mut self, message: &Value) {
        self.send_text(&message.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .expect("the socket takes the message");
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(
            &json!({ "type": "subscribe", "id": id, "payload": { "query": query, "variables": variables } }),
        )
        .await;
    }

    /// The server's next frame; a server `ping` is answered and skipped.
    ///
    /// # Panics
    /// When nothing comes within 30 s.
    pub async fn recv(&mut self) -> Frame {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("the server sent something within 30 s");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let message: Value = serde_json::from_str(&text).expect("a JSON message");
                    if message["type"] == "ping" {
                        self.pings_answered += 1;
                        self.send(&json!({ "type": "pong" })).await;
                        continue;
                    }
                    return Frame::Message(message);
                }
                Some(Ok(Message::Close(Some(close)))) => {
                    return Frame::Closed(close.code.into(), close.reason.to_string());
                }
                Some(Ok(Message::Close(None))) | None => return Frame::Closed(1005, String::new()),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Frame::Closed(1006, error.to_string()),
            }
        }
    }

    /// Waits for the close frame, skipping messages; its code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            if let Frame::Closed(code, reason) = self.recv().await {
                return (code, reason);
            }
        }
    }
}
