//! Redis for tests: the shared server's URL with a key namespace per test,
//! and a private `redis-server` for tests that stop or count it.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::wait::until_async;

/// The shared Redis at `REDIS_URL`.
///
/// # Panics
/// When `REDIS_URL` is unset: the suite needs one.
#[must_use]
pub fn redis_url() -> String {
    std::env::var("REDIS_URL")
        .expect("REDIS_URL must point at a Redis server: run scripts/test, which provisions one")
}

/// A key namespace of its own on a Redis server; its keys are deleted when
/// it drops (best effort: a leftover namespace harms no other test).
pub struct Namespace {
    pub url: String,
    pub name: String,
}

impl Namespace {
    /// A fresh namespace `<prefix>-<uuid>` on the shared Redis.
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        Self::on(&redis_url(), prefix)
    }

    /// A fresh namespace on the Redis at `url`.
    #[must_use]
    pub fn on(url: &str, prefix: &str) -> Self {
        Self {
            url: url.to_owned(),
            name: format!("{prefix}-{}", uuid::Uuid::now_v7().simple()),
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let Ok(mut conn) = redis::Client::open(self.url.as_str()).and_then(|c| c.get_connection()) else {
            return;
        };
        let keys: Vec<String> = match redis::Commands::scan_match(&mut conn, format!("{}:*", self.name)) {
            Ok(keys) => keys.filter_map(Result::ok).collect(),
            Err(_) => return,
        };
        for chunk in keys.chunks(1_000) {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(chunk).query(&mut conn);
        }
        // apalis lists every queue's worker set in one global sorted set.
        let _: redis::RedisResult<()> = redis::cmd("ZREM")
            .arg("core:apalis:queues:list")
            .arg(format!("{}:emails:workers", self.name))
            .arg(format!("{}:settlements:workers", self.name))
            .query(&mut conn);
    }
}

/// A throw-away `redis-server` (`$REDIS_SERVER_BIN`, else `redis-server` on
/// the `PATH`) on a free port, without persistence, never the shared one.
/// Killed when dropped.
pub struct PrivateRedis {
    pub port: u16,
    bin: String,
    dir: PathBuf,
    /// Where its output goes, every start appended: `<dir>/redis.log`.
    log: PathBuf,
    child: Option<tokio::process::Child>,
    /// Whether `dir` is ours to remove.
    owns_dir: bool,
}

impl PrivateRedis {
    /// Starts one with its files in a fresh temporary directory.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("storefront-redis-{}", uuid::Uuid::now_v7().simple()));
        Self::start_in(&dir, true).await
    }

    /// Starts one with its files and logs in `dir`, which the caller keeps.
    pub async fn start_with_logs_in(dir: &Path) -> Self {
        Self::start_in(dir, false).await
    }

    /// Picks its port and `dir` without starting it: Redis is "down" until
    /// [`PrivateRedis::restart`].
    #[must_use]
    pub fn reserve_in(dir: &Path) -> Self {
        Self::reserve(dir, false)
    }

    async fn start_in(dir: &Path, owns_dir: bool) -> Self {
        let mut redis = Self::reserve(dir, owns_dir);
        redis.spawn().await;
        redis
    }

    fn reserve(dir: &Path, owns_dir: bool) -> Self {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        Self {
            port,
            bin: std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".to_owned()),
            dir: dir.to_path_buf(),
            log: dir.join("redis.log"),
            child: None,
            owns_dir,
        }
    }

    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its log file (the output of every start).
    #[must_use]
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    async fn spawn(&mut self) {
        assert!(self.child.is_none(), "redis is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("open {}: {e}", self.log.display()));
        let err_log = log.try_clone().expect("log file handle");
        let child = tokio::process::Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err_log))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("start {} (set REDIS_SERVER_BIN): {error}", self.bin));
        self.child = Some(child);
        let url = self.url();
        until_async(
            Duration::from_secs(10),
            "the private redis-server answers PING",
            || {
                let url = url.clone();
                async move {
                    let Ok(client) = redis::Client::open(url) else {
                        return false;
                    };
                    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                        return false;
                    };
                    redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
                }
            },
        )
        .await;
    }

    /// Kills Redis (SIGKILL, nothing saved: like a crash) and waits for it to exit.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Starts Redis again, empty, on the same port (stopping it first if it runs).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    /// How many times Redis ran a script (EVAL/EVALSHA) so far.
    pub async fn script_calls(&self) -> u64 {
        let client = redis::Client::open(self.url()).expect("redis url");
        let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await
            .expect("INFO");
        info.lines()
            .filter(|line| line.starts_with("cmdstat_evalsha:") || line.starts_with("cmdstat_eval:"))
            .filter_map(|line| {
                line.split("calls=")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
