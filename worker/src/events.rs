//! Order events: "this order, or its payment, changed", sent after the
//! commit that changed it, to whoever watches the order (the api's
//! `orderUpdated` subscriptions).
//!
//! An event carries nothing but the order's id: a subscriber re-reads the
//! order through the normal, ownership-checked path, so no private data
//! travels on the channel and a stale or duplicate event costs one read.
//!
//! - With Redis (`REDIS_URL`), publishers (worker and api processes) send
//!   the id on the channel `<QUEUE_NAMESPACE>:order-events`; every api
//!   process runs [`OrderEvents::listen`], which forwards them to its own
//!   subscribers. A listener that loses Redis reconnects by itself and then
//!   sends [`OrderSignal::Resync`], so subscribers re-read what they may
//!   have missed meanwhile.
//! - Without Redis (the embedded default) the api and its in-process worker
//!   share one [`OrderEvents`], a Tokio broadcast channel.
//!
//! Publishing never fails a caller: the change is committed already, and a
//! lost event is caught up by the subscriber's periodic re-read.
use std::sync::Arc;
use std::time::Duration;

use entity::ids::OrderId;
use futures::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::broadcast;

/// Signals buffered per receiver; one that falls further behind gets
/// `Lagged` and re-reads (as for [`OrderSignal::Resync`]).
const CAPACITY: usize = 1024;
/// Longest wait between two attempts to reach Redis again.
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// What a subscriber hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderSignal {
    /// This order or its payment changed.
    Changed(OrderId),
    /// Events may have been missed (the listener reconnected): re-read.
    Resync,
}

/// The order events of this process; cheap to clone.
#[derive(Clone)]
pub struct OrderEvents {
    local: broadcast::Sender<OrderSignal>,
    redis: Option<RedisChannel>,
}

#[derive(Clone)]
struct RedisChannel {
    client: redis::Client,
    publisher: ConnectionManager,
    channel: Arc<str>,
    /// Bounds subscribing too (connect + one reply), so a Redis that
    /// swallows packets is retried rather than waited on for ever.
    timeouts: crate::queue::RedisTimeouts,
}

impl std::fmt::Debug for OrderEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderEvents")
            .field("redis_channel", &self.redis.as_ref().map(|r| r.channel.clone()))
            .finish_non_exhaustive()
    }
}

impl Default for OrderEvents {
    fn default() -> Self {
        Self::in_process()
    }
}

impl OrderEvents {
    /// Events that stay in this process.
    #[must_use]
    pub fn in_process() -> Self {
        Self {
            local: broadcast::channel(CAPACITY).0,
            redis: None,
        }
    }

    /// Events on the Redis at `url`, channel `<namespace>:order-events`.
    /// Connects on first use (and again after a failure), so Redis may be
    /// down when the process starts.
    ///
    /// # Errors
    /// When `url` is not a Redis URL.
    pub fn redis(
        url: &str,
        namespace: &str,
        timeouts: crate::queue::RedisTimeouts,
    ) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let publisher =
            ConnectionManager::new_lazy_with_config(client.clone(), crate::queue::redis_config(timeouts))?;
        Ok(Self {
            local: broadcast::channel(CAPACITY).0,
            redis: Some(RedisChannel {
                client,
                publisher,
                channel: format!("{namespace}:order-events").into(),
                timeouts,
            }),
        })
    }

    /// Tells every watcher of `order_id` that it changed. Call after the
    /// commit; never fails (see the module docs).
    pub async fn publish(&self, order_id: OrderId) {
        match &self.redis {
            Some(redis) => {
                let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                    .arg(&*redis.channel)
                    .arg(order_id.to_string())
                    .query_async(&mut redis.publisher.clone())
                    .await;
                if let Err(error) = sent {
                    tracing::warn!(%order_id, %error, "could not publish an order event; watchers catch up on their next re-read");
                }
            }
            None => {
                let _ = self.local.send(OrderSignal::Changed(order_id));
            }
        }
    }

    /// A receiver of every signal sent from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<OrderSignal> {
        self.local.subscribe()
    }

    /// With Redis: forwards the channel's events to this process's
    /// subscribers until `shutdown`, reconnecting (and sending `Resync`)
    /// whenever Redis goes away. Without Redis: returns at once.
    pub async fn listen(self, shutdown: impl Future<Output = ()>) {
        let Some(redis) = self.redis.clone() else {
            return;
        };
        tokio::pin!(shutdown);
        let mut wait = Duration::from_millis(100);
        let mut connected_before = false;
        loop {
            let session = async {
                let mut pubsub = redis.client.get_async_pubsub().await?;
                pubsub.subscribe(&*redis.channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            let limit = redis.timeouts.connect + redis.timeouts.response;
            let session = async {
                tokio::time::timeout(limit, session).await.unwrap_or_else(|_| {
                    Err(redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "subscribing timed out",
                    )))
                })
            };
            let pubsub = tokio::select! {
                () = &mut shutdown => return,
                session = session => session,
            };
            match pubsub {
                Ok(mut pubsub) => {
                    if connected_before {
                        tracing::info!("order events: listening on Redis again");
                    }
                    connected_before = true;
                    wait = Duration::from_millis(100);
                    // Whatever was published while nobody listened is lost: re-read.
                    let _ = self.local.send(OrderSignal::Resync);
                    let mut messages = pubsub.on_message();
                    loop {
                        let message = tokio::select! {
                            () = &mut shutdown => return,
                            message = messages.next() => message,
                        };
                        let Some(message) = message else {
                            tracing::warn!("order events: lost the Redis subscription; reconnecting");
                            break;
                        };
                        let id = message
                            .get_payload::<String>()
                            .ok()
                            .and_then(|text| text.parse::<uuid::Uuid>().ok());
                        match id {
                            Some(id) => {
                                let _ = self.local.send(OrderSignal::Changed(OrderId::from(id)));
                            }
                            None => tracing::warn!("order events: ignored a message that is not an order id"),
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?wait, "order events: Redis unreachable");
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(RECONNECT_MAX);
        }
    }
}
