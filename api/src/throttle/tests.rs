//! The limiter on real Redis and in process: the same answers from both.
use std::time::Duration;

use testkit::Namespace;
use worker::queue::RedisTimeouts;

use super::{Limiter, Quota};

/// Both stores, each with a fresh namespace (kept alive by the caller).
fn limiters() -> (Namespace, Vec<(&'static str, Limiter)>) {
    let namespace = Namespace::new("sf-throttle");
    let redis =
        Limiter::in_redis(&namespace.url, &namespace.name, RedisTimeouts::default()).expect("a Redis URL");
    (
        namespace,
        vec![("redis", redis), ("in-process", Limiter::in_process())],
    )
}

fn close(a: Duration, b: Duration) -> bool {
    a.abs_diff(b) < Duration::from_secs(2)
}

#[tokio::test]
async fn takes_peeks_and_refunds_answer_alike_in_redis_and_in_process() {
    let (_namespace, limiters) = limiters();
    // 5 per hour: one unit back every 12 minutes.
    let quota = Quota::per(5, Duration::from_secs(3600));
    let interval = Duration::from_secs(720);
    for (store, limiter) in limiters {
        let first = limiter.take("test", "ada@example.com", quota, 3).await;
        assert!(first.allowed, "{store}");
        assert_eq!(first.remaining, 2, "{store}");
        assert!(close(first.reset_after, 3 * interval), "{store}: {first:?}");

        let refused = limiter.take("test", "ada@example.com", quota, 3).await;
        assert!(!refused.allowed, "{store}");
        assert_eq!(refused.remaining, 2, "{store}: a refusal takes nothing");
        assert!(
            close(refused.retry_after, interval),
            "{store}: one unit short: {refused:?}"
        );
        assert_eq!(
            refused.retry_after_secs(),
            refused.retry_after.as_secs() + 1,
            "{store}"
        );

        let other = limiter.take("test", "bob@example.com", quota, 5).await;
        assert!(
            other.allowed && other.remaining == 0,
            "{store}: subjects are apart"
        );
        let other_limit = limiter.take("other", "ada@example.com", quota, 5).await;
        assert!(other_limit.allowed, "{store}: limits are apart");

        let peeked = limiter.peek("test", "ada@example.com", quota).await;
        assert!(peeked.allowed && peeked.remaining == 2, "{store}: {peeked:?}");
        let refunded = limiter.give_back("test", "ada@example.com", quota, 2).await;
        assert_eq!(refunded.remaining, 4, "{store}");
        let overfilled = limiter.give_back("test", "ada@example.com", quota, 100).await;
        assert_eq!(overfilled.remaining, 5, "{store}: never beyond full");
        assert_eq!(overfilled.reset_after, Duration::ZERO, "{store}");
    }
}

#[tokio::test]
async fn units_come_back_one_interval_at_a_time() {
    let (_namespace, limiters) = limiters();
    // 2 per 600 ms: one back every 300 ms.
    let quota = Quota::per(2, Duration::from_millis(600));
    for (store, limiter) in limiters {
        assert!(limiter.take("refill", "k", quota, 2).await.allowed, "{store}");
        let empty = limiter.take("refill", "k", quota, 1).await;
        assert!(!empty.allowed, "{store}");
        assert!(
            empty.retry_after <= Duration::from_millis(300),
            "{store}: {empty:?}"
        );
        tokio::time::sleep(empty.retry_after + Duration::from_millis(20)).await;
        assert!(
            limiter.take("refill", "k", quota, 1).await.allowed,
            "{store}: one came back"
        );
        assert!(
            !limiter.take("refill", "k", quota, 1).await.allowed,
            "{store}: only one"
        );
    }
}

#[tokio::test]
async fn many_tasks_at_once_take_exactly_the_burst() {
    let (_namespace, limiters) = limiters();
    let quota = Quota::per(50, Duration::from_secs(3600));
    for (store, limiter) in limiters {
        let tasks = (0..400).map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.take("race", "one key", quota, 1).await.allowed })
        });
        let allowed = futures::future::join_all(tasks)
            .await
            .into_iter()
            .filter(|taken| *taken.as_ref().expect("the task ran"))
            .count();
        assert_eq!(allowed, 50, "{store}");
    }
}

#[tokio::test]
async fn two_limiters_on_one_redis_share_their_buckets() {
    let namespace = Namespace::new("sf-throttle");
    let first =
        Limiter::in_redis(&namespace.url, &namespace.name, RedisTimeouts::default()).expect("a Redis URL");
    let second =
        Limiter::in_redis(&namespace.url, &namespace.name, RedisTimeouts::default()).expect("a Redis URL");
    let quota = Quota::per(4, Duration::from_secs(3600));
    let mut allowed = 0;
    for n in 0..10 {
        let limiter = if n % 2 == 0 { &first } else { &second };
        allowed += usize::from(limiter.take("shared", "ip", quota, 1).await.allowed);
    }
    assert_eq!(allowed, 4);
}

#[tokio::test]
async fn keys_live_in_the_namespace_and_name_no_subject() {
    let namespace = Namespace::new("sf-throttle");
    let limiter =
        Limiter::in_redis(&namespace.url, &namespace.name, RedisTimeouts::default()).expect("a Redis URL");
    let quota = Quota::per(3, Duration::from_secs(60));
    limiter.take("login", "secret-person@example.com", quota, 1).await;
    let mut conn = redis::Client::open(namespace.url.as_str())
        .and_then(|client| client.get_connection())
        .expect("connect");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", namespace.name))
        .query(&mut conn)
        .expect("KEYS");
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].starts_with(&format!("{}:throttle:login:", namespace.name)),
        "{keys:?}"
    );
    assert!(!keys[0].contains("secret-person"), "{keys:?}");
    let ttl: i64 = redis::cmd("PTTL").arg(&keys[0]).query(&mut conn).expect("PTTL");
    assert!(
        (1..=20_000).contains(&ttl),
        "expires when the bucket is full: {ttl} ms"
    );
}

#[tokio::test]
async fn without_redis_the_same_quotas_hold_in_process_and_quickly() {
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let limiter = Limiter::in_redis(
        &format!("redis://127.0.0.1:{port}"),
        "down",
        RedisTimeouts::default(),
    )
    .expect("a Redis URL");
    let quota = Quota::per(3, Duration::from_secs(3600));
    let started = std::time::Instant::now();
    let allowed: Vec<bool> = futures::future::join_all((0..10).map(|_| limiter.take("down", "k", quota, 1)))
        .await
        .into_iter()
        .map(|decision| decision.allowed)
        .collect();
    assert_eq!(allowed.iter().filter(|a| **a).count(), 3, "{allowed:?}");
    for _ in 0..100 {
        assert!(!limiter.take("down", "k", quota, 1).await.allowed);
    }
    assert!(
        started.elapsed() < super::REDIS_TIMEOUT * 3,
        "Redis is not waited for on every call: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_key_is_the_limit_and_the_first_half_of_the_subjects_sha256_in_hex() {
    // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a3…
    assert_eq!(
        super::key("login", "abc"),
        "login:ba7816bf8f01cfea414140de5dae2223"
    );
}
