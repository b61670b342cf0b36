//! The leaky bucket each client's documents are paid from, the way
//! Shopify's Admin API throttles: a bucket of `COST_BUCKET_SIZE` points
//! (1000) per client, refilled at `COST_RESTORE_RATE` points a second (50).
//!
//! A client is the signed-in user (`user:<id>`), else the client address
//! that the other rate limits count (`ip:<address>`, see
//! `http::client_ip`): a user keeps one bucket from any address, and the
//! anonymous requests of one address share one.
//!
//! The bucket is a limit of the [`Limiter`] named [`LIMIT`], one GCRA key
//! per client: a take of `n` points is `n` units at once, a refund puts
//! units back (never beyond full), and a take of 0 only reads the level.
//! So it is kept where every limit is kept — one atomic Lua script in Redis
//! shared by every api instance, in the process without Redis or while
//! Redis fails (`throttle` says how) — and a refusal counts in
//! `rate_limited_total{limit="cost_bucket"}`.
use async_graphql::{Name, Value};

use crate::auth::Viewer;
use crate::http::client_ip::ClientIp;
use crate::throttle::{Decision, Limiter, Quota};

/// The bucket's name among the limits: the `limit` label of
/// `rate_limited_total` and the prefix of its Redis keys.
pub const LIMIT: &str = "cost_bucket";

/// The points a bucket holds by default (Shopify's Admin API: 1000).
pub const DEFAULT_SIZE: u32 = 1000;

/// The points restored per second by default (Shopify's Admin API: 50).
pub const DEFAULT_RESTORE_RATE: f64 = 50.0;

/// `COST_BUCKET_SIZE` and `COST_RESTORE_RATE`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSettings {
    /// The most points a client holds, and so the most one document may
    /// cost (with `MAX_QUERY_COST`, whichever is lower).
    pub size: u32,
    /// Points restored per second.
    pub restore_rate: f64,
}

impl Default for BucketSettings {
    fn default() -> Self {
        Self {
            size: DEFAULT_SIZE,
            restore_rate: DEFAULT_RESTORE_RATE,
        }
    }
}

impl BucketSettings {
    /// The settings, refused when they would make a bucket that holds
    /// nothing or never refills.
    ///
    /// # Errors
    /// (variable, reason) for a size of 0 or a rate that is not a positive
    /// number.
    pub fn new(size: u32, restore_rate: f64) -> Result<Self, (&'static str, String)> {
        if size == 0 {
            return Err(("COST_BUCKET_SIZE", "must be at least 1".to_owned()));
        }
        if !(restore_rate.is_finite() && restore_rate > 0.0) {
            return Err((
                "COST_RESTORE_RATE",
                format!("{restore_rate} is not a number of points per second above 0"),
            ));
        }
        Ok(Self { size, restore_rate })
    }
}

/// The buckets of every client, and how full they are.
#[derive(Clone)]
pub struct Buckets {
    limiter: Limiter,
    settings: BucketSettings,
    quota: Quota,
}

impl Buckets {
    #[must_use]
    pub fn new(limiter: Limiter, settings: BucketSettings) -> Self {
        Self {
            limiter,
            settings,
            quota: Quota::per_second(settings.size, settings.restore_rate),
        }
    }

    #[must_use]
    pub fn settings(&self) -> BucketSettings {
        self.settings
    }

    /// Takes `points` from `client`'s bucket, all of them or none; a take
    /// of 0 only reads the level (a free document always runs).
    pub async fn take(&self, client: &str, points: u64) -> Decision {
        if points == 0 {
            // A peek says whether one point is there; none is needed.
            let level = self.level(client).await;
            return Decision {
                allowed: true,
                retry_after: std::time::Duration::ZERO,
                ..level
            };
        }
        let points = u32::try_from(points).unwrap_or(u32::MAX);
        self.limiter.take(LIMIT, client, self.quota, points).await
    }

    /// Gives `points` back to `client`'s bucket (never beyond full), and
    /// reads its level.
    pub async fn give_back(&self, client: &str, points: u64) -> Decision {
        let points = u32::try_from(points).unwrap_or(u32::MAX);
        self.limiter.give_back(LIMIT, client, self.quota, points).await
    }

    /// `client`'s bucket, taking nothing.
    pub async fn level(&self, client: &str) -> Decision {
        self.limiter.peek(LIMIT, client, self.quota).await
    }

    /// `extensions.cost`, in the shape of Shopify's Admin API:
    /// `{ requestedQueryCost, actualQueryCost, throttleStatus {
    /// maximumAvailable, currentlyAvailable, restoreRate } }`, the bucket
    /// as `level` left it; `actual` is null for a document that did not run.
    #[must_use]
    pub fn extension(&self, requested: u64, actual: Option<u64>, level: &Decision) -> Value {
        let throttle_status = object([
            ("maximumAvailable", Value::from(f64::from(self.settings.size))),
            ("currentlyAvailable", Value::from(level.remaining)),
            ("restoreRate", Value::from(self.settings.restore_rate)),
        ]);
        object([
            ("requestedQueryCost", Value::from(requested)),
            ("actualQueryCost", actual.map_or(Value::Null, Value::from)),
            ("throttleStatus", throttle_status),
        ])
    }
}

/// Whose bucket pays for a request: the signed-in user, else the client
/// address ("unknown" when the transport gave none, never from a real
/// request). An invalid token pays from its address's bucket.
#[must_use]
pub fn client_of(viewer: Option<&Viewer>, client: Option<&ClientIp>) -> String {
    match viewer {
        Some(Viewer::User(actor)) => format!("user:{}", actor.user_id),
        _ => format!(
            "ip:{}",
            client.map_or_else(|| "unknown".to_owned(), ClientIp::subject)
        ),
    }
}

fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(name, value)| (Name::new(name), value))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_has_shopifys_shape_and_number_types() {
        let buckets = Buckets::new(Limiter::in_process(), BucketSettings::default());
        let level = Decision {
            allowed: true,
            remaining: 992,
            retry_after: std::time::Duration::ZERO,
            reset_after: std::time::Duration::ZERO,
        };
        let json = serde_json::to_string(&buckets.extension(22, Some(8), &level)).expect("json");
        assert_eq!(
            json,
            r#"{"requestedQueryCost":22,"actualQueryCost":8,"throttleStatus":{"maximumAvailable":1000.0,"currentlyAvailable":992,"restoreRate":50.0}}"#
        );
        let refused = serde_json::to_string(&buckets.extension(22, None, &level)).expect("json");
        assert!(refused.contains(r#""actualQueryCost":null"#), "{refused}");
    }

    #[test]
    fn settings_that_hold_nothing_or_never_refill_are_refused() {
        assert_eq!(
            BucketSettings::new(0, 50.0).map_err(|e| e.0),
            Err("COST_BUCKET_SIZE")
        );
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                BucketSettings::new(1000, rate).map_err(|e| e.0),
                Err("COST_RESTORE_RATE")
            );
        }
        assert!(BucketSettings::new(1, 0.5).is_ok());
    }
}
