//! Which calls are limited, by what, and how a refusal reads: the named
//! limits with their defaults and variables (README "Rate limits" lists
//! them), and the helpers resolvers call. Resolvers never count anything
//! themselves: they name a [`Limit`] and a subject.
//!
//! Counting is per field execution: `a: login(…) b: login(…)` takes twice
//! (and is refused before it runs anyway: see `crate::limits`).
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_graphql::{Context, ErrorExtensions};
use entity::DomainError;
use entity::accounts::Email;

use super::{Decision, Escalation, Quota};
use crate::errors::{client_error, code};
use crate::http::client_ip::ClientIp;
use crate::state::AppState;

/// A rate limit: its name (in `rate_limited_total{limit}` and in its Redis
/// keys), what it counts, and its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// `login` attempts per client IP and email.
    LoginIpEmail,
    /// `login` attempts per email, from anywhere.
    LoginEmail,
    /// `login` attempts per client IP, whatever the email.
    LoginIp,
    /// `register` per client IP.
    RegisterIp,
    /// `register` per email.
    RegisterEmail,
    /// `requestPasswordReset` per client IP.
    PasswordResetIp,
    /// `requestPasswordReset` per email (each may send an email).
    PasswordResetEmail,
    /// `resetPassword` per client IP.
    ResetPasswordIp,
    /// `resetPassword` per account the token belongs to.
    ResetPasswordAccount,
    /// `placeOrder` per signed-in user.
    PlaceOrderUser,
    /// Persisted queries registered (stored) per client IP.
    PersistedQueryIp,
}

impl Limit {
    pub const ALL: [Limit; 11] = [
        Limit::LoginIpEmail,
        Limit::LoginEmail,
        Limit::LoginIp,
        Limit::RegisterIp,
        Limit::RegisterEmail,
        Limit::PasswordResetIp,
        Limit::PasswordResetEmail,
        Limit::ResetPasswordIp,
        Limit::ResetPasswordAccount,
        Limit::PlaceOrderUser,
        Limit::PersistedQueryIp,
    ];

    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Limit::LoginIpEmail => "login_ip_email",
            Limit::LoginEmail => "login_email",
            Limit::LoginIp => "login_ip",
            Limit::RegisterIp => "register_ip",
            Limit::RegisterEmail => "register_email",
            Limit::PasswordResetIp => "password_reset_ip",
            Limit::PasswordResetEmail => "password_reset_email",
            Limit::ResetPasswordIp => "reset_password_ip",
            Limit::ResetPasswordAccount => "reset_password_account",
            Limit::PlaceOrderUser => "place_order_user",
            Limit::PersistedQueryIp => "persisted_query_ip",
        }
    }

    /// `RATE_LIMIT_<NAME>`, e.g. `RATE_LIMIT_LOGIN_IP_EMAIL`.
    #[must_use]
    pub const fn variable(self) -> &'static str {
        match self {
            Limit::LoginIpEmail => "RATE_LIMIT_LOGIN_IP_EMAIL",
            Limit::LoginEmail => "RATE_LIMIT_LOGIN_EMAIL",
            Limit::LoginIp => "RATE_LIMIT_LOGIN_IP",
            Limit::RegisterIp => "RATE_LIMIT_REGISTER_IP",
            Limit::RegisterEmail => "RATE_LIMIT_REGISTER_EMAIL",
            Limit::PasswordResetIp => "RATE_LIMIT_PASSWORD_RESET_IP",
            Limit::PasswordResetEmail => "RATE_LIMIT_PASSWORD_RESET_EMAIL",
            Limit::ResetPasswordIp => "RATE_LIMIT_RESET_PASSWORD_IP",
            Limit::ResetPasswordAccount => "RATE_LIMIT_RESET_PASSWORD_ACCOUNT",
            Limit::PlaceOrderUser => "RATE_LIMIT_PLACE_ORDER_USER",
            Limit::PersistedQueryIp => "RATE_LIMIT_PERSISTED_QUERY_IP",
        }
    }

    /// The default: (count, per period).
    #[must_use]
    pub const fn default_rate(self) -> Rate {
        const MINUTE: u64 = 60;
        const HOUR: u64 = 3600;
        let (count, secs) = match self {
            Limit::LoginIpEmail => (10, 15 * MINUTE),
            Limit::LoginEmail => (50, 15 * MINUTE),
            Limit::LoginIp => (100, 15 * MINUTE),
            Limit::RegisterIp | Limit::PasswordResetIp | Limit::ResetPasswordIp => (10, HOUR),
            Limit::RegisterEmail | Limit::PasswordResetEmail => (3, HOUR),
            Limit::ResetPasswordAccount => (5, HOUR),
            Limit::PlaceOrderUser => (30, HOUR),
            Limit::PersistedQueryIp => (100, 10 * MINUTE),
        };
        Rate::Every {
            count,
            period: Duration::from_secs(secs),
        }
    }
}

/// A limit's setting: `<count>/<period>` (`10/15m`; units s, m, h, d),
/// all `count` available at once and refilled evenly over `period`; or
/// `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    Off,
    Every { count: u32, period: Duration },
}

impl Rate {
    #[must_use]
    pub fn quota(self) -> Option<Quota> {
        match self {
            Rate::Off => None,
            Rate::Every { count, period } => Some(Quota::per(count, period)),
        }
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(Rate::Off);
        }
        let bad = || format!("{text:?} is not <count>/<period> (e.g. 10/15m) or off");
        let (count, period) = text.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let period = worker::env::parse_period(period).ok_or_else(bad)?;
        if count == 0 || period.is_zero() {
            return Err(format!("{text:?}: use off to turn a limit off"));
        }
        Ok(Rate::Every { count, period })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Off => f.write_str("off"),
            Rate::Every { count, period } => write!(f, "{count}/{}", Period(*period)),
        }
    }
}

/// A duration as `90s`, `15m`, `1h` or `1d` (the largest whole unit).
pub struct Period(pub Duration);

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        match secs {
            s if s % 86_400 == 0 && s > 0 => write!(f, "{}d", s / 86_400),
            s if s % 3600 == 0 && s > 0 => write!(f, "{}h", s / 3600),
            s if s % 60 == 0 && s > 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

/// The rate of every limit, and the login blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    rates: Vec<(Limit, Rate)>,
    /// Failed logins per client IP and email that start a block.
    pub login_block: Escalation,
    /// Failed logins per email, from anywhere, that start a block (a
    /// guesser spread over many addresses).
    pub login_block_email: Escalation,
}

/// The block escalation's defaults: after 5 failures (20 per email),
/// 1 minute, doubling to 1 hour; failures remembered a day.
const LOGIN_BLOCK_AFTER: u32 = 5;
const LOGIN_BLOCK_AFTER_PER_EMAIL: u32 = 20;

impl Default for RateLimits {
    fn default() -> Self {
        let login_block = Escalation {
            after: LOGIN_BLOCK_AFTER,
            first: Duration::from_secs(60),
            max: Duration::from_secs(3600),
            remember: Duration::from_secs(86_400),
        };
        Self {
            rates: Limit::ALL
                .iter()
                .map(|&limit| (limit, limit.default_rate()))
                .collect(),
            login_block,
            login_block_email: Escalation {
                after: LOGIN_BLOCK_AFTER_PER_EMAIL,
                ..login_block
            },
        }
    }
}

impl RateLimits {
    /// The defaults with the variables `lookup` finds applied:
    /// `RATE_LIMIT_<NAME>` for each limit, `LOGIN_BLOCK_AFTER`,
    /// `LOGIN_BLOCK_AFTER_PER_EMAIL`, `LOGIN_BLOCK_FIRST`, `LOGIN_BLOCK_MAX`,
    /// `LOGIN_FAILURES_REMEMBERED`.
    ///
    /// # Errors
    /// (variable, reason) for a value that does not parse.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, (&'static str, String)> {
        let mut limits = Self::default();
        for (limit, rate) in &mut limits.rates {
            if let Some(text) = lookup(limit.variable()) {
                *rate = text.parse().map_err(|reason| (limit.variable(), reason))?;
            }
        }
        let count = |name: &'static str, default: u32| -> Result<u32, (&'static str, String)> {
            lookup(name).map_or(Ok(default), |text| {
                text.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| (name, format!("{text:?} is not a whole number above 0")))
            })
        };
        let period = |name: &'static str, default: Duration| -> Result<Duration, (&'static str, String)> {
            lookup(name).map_or(Ok(default), |text| {
                worker::env::parse_period(&text)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| (name, format!("{text:?} is not a period like 90s, 15m, 1h")))
            })
        };
        let block = &mut limits.login_block;
        block.after = count("LOGIN_BLOCK_AFTER", block.after)?;
        block.first = period("LOGIN_BLOCK_FIRST", block.first)?;
        block.max = period("LOGIN_BLOCK_MAX", block.max)?.max(block.first);
        block.remember = period("LOGIN_FAILURES_REMEMBERED", block.remember)?;
        limits.login_block_email = Escalation {
            after: count("LOGIN_BLOCK_AFTER_PER_EMAIL", LOGIN_BLOCK_AFTER_PER_EMAIL)?,
            ..limits.login_block
        };
        Ok(limits)
    }

    #[must_use]
    pub fn rate(&self, limit: Limit) -> Rate {
        self.rates
            .iter()
            .find(|(l, _)| *l == limit)
            .map_or(limit.default_rate(), |(_, rate)| *rate)
    }

    /// Sets one limit (tests, tools).
    pub fn set(&mut self, limit: Limit, rate: Rate) {
        for (l, r) in &mut self.rates {
            if *l == limit {
                *r = rate;
            }
        }
    }
}

/// RATE_LIMITED, with `extensions.retryAfter` in whole seconds.
#[must_use]
pub fn rate_limited(retry_after_secs: u64) -> async_graphql::Error {
    client_error(
        code::RATE_LIMITED,
        format!("too many attempts: try again in {retry_after_secs} s"),
    )
    .extend_with(|_, e| e.set("retryAfter", retry_after_secs))
}

/// The client address of the request as a limit's subject; "unknown" when
/// the transport gave none (never from a real request).
#[must_use]
pub fn client_subject(ctx: &Context<'_>) -> String {
    ctx.data_opt::<ClientIp>()
        .map_or_else(|| "unknown".to_owned(), ClientIp::subject)
}

/// Takes one unit of each `(limit, subject)`, in order, stopping at the
/// first refusal.
///
/// # Errors
/// RATE_LIMITED with the refusal's `retryAfter`.
pub async fn take(ctx: &Context<'_>, checks: &[(Limit, &str)]) -> async_graphql::Result<()> {
    let state = ctx.data::<AppState>()?;
    for (limit, subject) in checks {
        let Some(quota) = state.rate_limits.rate(*limit).quota() else {
            continue;
        };
        let decision: Decision = state.limiter.take(limit.name(), subject, quota, 1).await;
        if !decision.allowed {
            return Err(rate_limited(decision.retry_after_secs()));
        }
    }
    Ok(())
}

/// Names of the login blocks (metric label and key prefix).
const BLOCK_IP_EMAIL: &str = "login_block_ip_email";
const BLOCK_EMAIL: &str = "login_block_email";

/// One login attempt that the limits let through; [`LoginAttempt::finish`]
/// records how it went.
pub struct LoginAttempt {
    ip_email: String,
    email: String,
}

impl LoginAttempt {
    /// Refuses a login while its IP and email, or its email, is blocked,
    /// then takes a unit of each login limit.
    ///
    /// # Errors
    /// RATE_LIMITED with the block's or the limit's `retryAfter`.
    pub async fn begin(ctx: &Context<'_>, email: &Email) -> async_graphql::Result<Self> {
        let state = ctx.data::<AppState>()?;
        let ip = client_subject(ctx);
        let attempt = Self {
            ip_email: format!("{ip} {}", email.as_str()),
            email: email.as_str().to_owned(),
        };
        for (block, subject) in [(BLOCK_IP_EMAIL, &attempt.ip_email), (BLOCK_EMAIL, &attempt.email)] {
            let left = state.limiter.blocked(block, subject).await;
            if !left.is_zero() {
                metrics::counter!("rate_limited_total", "limit" => block).increment(1);
                return Err(rate_limited(secs_up(left)));
            }
        }
        take(
            ctx,
            &[
                (Limit::LoginIpEmail, &attempt.ip_email),
                (Limit::LoginEmail, &attempt.email),
                (Limit::LoginIp, &ip),
            ],
        )
        .await?;
        Ok(attempt)
    }

    /// A wrong password (or unknown email) counts towards the blocks; a
    /// success forgets the failures; anything else (a database error)
    /// changes nothing.
    pub async fn finish<T>(self, ctx: &Context<'_>, outcome: &Result<T, DomainError>) {
        let Ok(state) = ctx.data::<AppState>() else {
            return;
        };
        let limiter = &state.limiter;
        match outcome {
            Ok(_) => {
                limiter.succeeded(BLOCK_IP_EMAIL, &self.ip_email).await;
                limiter.succeeded(BLOCK_EMAIL, &self.email).await;
            }
            Err(DomainError::Unauthenticated(_)) => {
                let limits = &state.rate_limits;
                let blocked = limiter
                    .failed(BLOCK_IP_EMAIL, &self.ip_email, limits.login_block)
                    .await;
                let blocked_everywhere = limiter
                    .failed(BLOCK_EMAIL, &self.email, limits.login_block_email)
                    .await;
                if !blocked_everywhere.is_zero() {
                    tracing::warn!(
                        block_secs = blocked_everywhere.as_secs(),
                        "login: an email is blocked everywhere after repeated failures"
                    );
                } else if !blocked.is_zero() {
                    tracing::info!(
                        block_secs = blocked.as_secs(),
                        "login: a client is blocked for an email"
                    );
                }
            }
            Err(_) => {}
        }
    }
}

/// Whole seconds, rounded up.
fn secs_up(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print_alike() {
        for text in ["10/15m", "3/1h", "100/90s", "5/1d", "off"] {
            let rate: Rate = text.parse().expect(text);
            assert_eq!(rate.to_string(), text);
        }
        assert_eq!("10/60".parse::<Rate>().map(|r| r.to_string()), Ok("10/1m".into()));
        for bad in ["10", "ten/1m", "10/1w", "0/1m", "10/0s", ""] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?} refused");
        }
    }

    #[test]
    fn every_limit_has_a_distinct_name_and_variable() {
        let names: std::collections::HashSet<_> = Limit::ALL.iter().map(|l| l.name()).collect();
        assert_eq!(names.len(), Limit::ALL.len());
        for limit in Limit::ALL {
            assert_eq!(
                limit.variable(),
                format!("RATE_LIMIT_{}", limit.name().to_ascii_uppercase())
            );
        }
    }

    #[test]
    fn variables_override_the_defaults_and_bad_values_name_their_variable() {
        let limits = RateLimits::from_lookup(|name| match name {
            "RATE_LIMIT_REGISTER_IP" => Some("50/1h".into()),
            "RATE_LIMIT_PLACE_ORDER_USER" => Some("off".into()),
            "LOGIN_BLOCK_AFTER" => Some("3".into()),
            "LOGIN_BLOCK_FIRST" => Some("30s".into()),
            _ => None,
        })
        .expect("parses");
        assert_eq!(limits.rate(Limit::RegisterIp).to_string(), "50/1h");
        assert_eq!(limits.rate(Limit::PlaceOrderUser), Rate::Off);
        assert_eq!(limits.rate(Limit::LoginIpEmail).to_string(), "10/15m");
        assert_eq!(limits.login_block.after, 3);
        assert_eq!(limits.login_block.first, Duration::from_secs(30));
        assert_eq!(limits.login_block_email.first, Duration::from_secs(30));
        assert_eq!(limits.login_block_email.after, 20);

        let error = RateLimits::from_lookup(|name| (name == "RATE_LIMIT_LOGIN_IP").then(|| "lots".into()))
            .expect_err("refused");
        assert_eq!(error.0, "RATE_LIMIT_LOGIN_IP");
    }
}
