//! Starting the real binaries and talking to them.
//!
//! A [`Cluster`] is one test's world: a fresh PostgreSQL database, its own
//! Redis namespace, a real SMTP server ([`TestSmtp`]), the environment every
//! process of the test gets (fast retries, short timeouts), and a log
//! directory `target/process-tests/<test>/` (wiped when the test starts)
//! holding each process's stdout and stderr. When a test fails, the tail of
//! every log is printed with the failure. Every process is SIGKILLed when
//! its [`Process`] is dropped, so a failing test leaves nothing running.
use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener as StdTcpListener;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sea_orm::EntityTrait;
use serde_json::{Value, json};
use testkit::{
    Backend, Behaviour, GraphqlClient, Namespace, PrivatePostgres, PrivateRedis, Session, TestDb, TestSmtp,
    parse,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const JWT_SECRET: &str = "process-test-secret-process-test-secret";
pub use testkit::eventually;

/// The harness's quick settings (see [`Cluster`]) put back to the defaults
/// of README, for fault tests: a recovery must not depend on a shortened
/// timeout.
pub const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("JOB_MAX_ATTEMPTS", "6"),
    ("JOB_BACKOFF_BASE_MS", "1000"),
    ("JOB_BACKOFF_MAX_MS", "300000"),
    ("CAPTURE_TIMEOUT_MS", "10000"),
    ("SANDBOX_TIMEOUT_MS", "30000"),
    ("SWEEP_INTERVAL_MS", "1000"),
    ("DISPATCH_GRACE_MS", "3000"),
    ("ORPHAN_AFTER_SECS", "30"),
    ("SHUTDOWN_DEADLINE_SECS", "20"),
];

/// How long a process may take to answer its health check after starting.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `api` binary cargo built for this test.
pub fn api_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_api"))
}

/// The `worker` binary, next to `api`. Cargo builds it for `cargo test
/// --workspace` (as `scripts/test` runs), since the worker crate has
/// integration tests; with `cargo test -p api` alone, build it first. A
/// binary older than the sources it is built from fails the test rather
/// than testing yesterday's worker.
pub fn worker_bin() -> PathBuf {
    let path = api_bin().with_file_name(format!("worker{}", std::env::consts::EXE_SUFFIX));
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    match built {
        None => panic!(
            "the worker binary {} is missing: run scripts/test, or `cargo build -p worker` before `cargo test -p api`",
            path.display()
        ),
        Some(built) if built < newest_source() => panic!(
            "the worker binary {} is older than its sources: `cargo build -p worker` first (scripts/test does)",
            path.display()
        ),
        Some(_) => path,
    }
}

/// When the worker's sources (its crate, `entity`, `migration`, the
/// manifests) last changed.
fn newest_source() -> std::time::SystemTime {
    fn walk(path: &Path, newest: &mut std::time::SystemTime) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                walk(&entry.path(), newest);
            }
        } else if let Ok(modified) = meta.modified() {
            *newest = (*newest).max(modified);
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the api crate sits in the workspace");
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for part in [
        "worker/src",
        "worker/Cargo.toml",
        "entity/src",
        "entity/Cargo.toml",
        "migration/src",
        "Cargo.lock",
    ] {
        walk(&root.join(part), &mut newest);
    }
    newest
}

/// The directory for one test's logs and files, emptied first.
pub fn test_dir(test: &str) -> PathBuf {
    let target = api_bin()
        .parent()
        .and_then(Path::parent)
        .map_or_else(std::env::temp_dir, Path::to_path_buf);
    let dir = target.join("process-tests").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// A free port on 127.0.0.1 (free when asked; the process binds it a moment later).
pub fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The logs of a test's processes; prints their tails if the test fails.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<PathBuf>>>);

impl Logs {
    pub fn add(&self, path: PathBuf) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(path);
    }

    fn print_tails(&self) {
        for path in self.0.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!(
                "\n----- last {} lines of {} -----\n{}",
                tail.len(),
                path.display(),
                tail.join("\n")
            );
        }
    }
}

/// Prints the logs' tails when dropped during a panic (a failing test).
pub struct PrintLogsOnFailure(pub Logs);

impl Drop for PrintLogsOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.print_tails();
        }
    }
}

/// The environment of a process: exactly these variables (and `PATH`).
pub type Env = BTreeMap<String, String>;

/// A running binary, SIGKILLed when dropped.
pub struct Process {
    pub name: String,
    /// The port of its HTTP server (`API_BIND` or `WORKER_BIND`).
    pub port: u16,
    child: tokio::process::Child,
    log: PathBuf,
}

impl Process {
    /// Starts `program args` in `dir` with exactly `env` (no variable of the
    /// test's own environment leaks in; `.env` files are not found either,
    /// since `dir` has none), output to `dir/<name>.log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[&str],
        env: &Env,
        port: u16,
        dir: &Path,
        logs: &Logs,
    ) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let stderr = file.try_clone().expect("clone the log file handle");
        logs.add(log.clone());
        let child = tokio::process::Command::new(program)
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        Self {
            name: name.to_owned(),
            port,
            child,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the process is running")
    }

    /// The process's output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it is still running (not exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until `GET path` answers 200; panics if the process exits first.
    pub async fn wait_until_serving(&mut self, path: &str) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("HTTP client");
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}) before serving {path}", self.name);
            }
            if let Ok(response) = client.get(self.url(path)).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "{} did not answer {path} within {START_TIMEOUT:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL, and waits for the process to be gone.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("SIGKILL");
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("a SIGKILLed process exits");
    }

    /// Sends SIGTERM (with `kill`, so the test needs no signal crate).
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits for the process to exit, at most `within`.
    pub async fn exit_status(&mut self, within: Duration) -> ExitStatus {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.expect("wait for the process"),
            Err(_) => panic!("{} still running after {within:?}", self.name),
        }
    }
}

/// One test's world (see the module docs). Fields drop in order: processes
/// before the database.
pub struct Cluster {
    pub api: Process,
    pub smtp: TestSmtp,
    /// What every process of this cluster starts with.
    pub env: Env,
    pub dir: PathBuf,
    pub graphql: GraphqlClient,
    pub logs: Logs,
    /// Its keys go when the cluster drops.
    _namespace: Namespace,
    workers_started: usize,
    /// Declared after the processes so it is dropped after them.
    pub db: TestDb,
    /// The test's own PostgreSQL server, when it has one (dropped last).
    pub postgres: Option<PrivatePostgres>,
    _print_logs: PrintLogsOnFailure,
}

impl Cluster {
    /// A fresh database and namespace on the `REDIS_URL` Redis, and the api
    /// running against them with `overrides` applied to the environment.
    pub async fn start(test: &str, overrides: &[(&str, &str)]) -> Self {
        let namespace = Namespace::new("sf-proc");
        let dir = test_dir(test);
        Self::build(dir, Logs::default(), namespace, overrides, None).await
    }

    /// The same on a PostgreSQL server of this test's own, which it may
    /// restart (`cluster.postgres`).
    pub async fn start_on_private_postgres(test: &str, overrides: &[(&str, &str)]) -> Self {
        let namespace = Namespace::new("sf-proc");
        let dir = test_dir(test);
        let logs = Logs::default();
        let postgres = PrivatePostgres::start().await;
        logs.add(postgres.log_path());
        Self::build(dir, logs, namespace, overrides, Some(postgres)).await
    }

    /// The same on a private `redis-server` of this test that is not
    /// running yet (start it with `restart`).
    pub async fn start_with_redis_down(test: &str, overrides: &[(&str, &str)]) -> (Self, PrivateRedis) {
        let dir = test_dir(test);
        let logs = Logs::default();
        let redis = PrivateRedis::reserve_in(&dir);
        logs.add(redis.log_path().to_path_buf());
        let namespace = Namespace::on(&redis.url(), "sf-proc");
        let cluster = Self::build(dir, logs, namespace, overrides, None).await;
        (cluster, redis)
    }

    /// The same on a private `redis-server` of this test, started first.
    pub async fn start_with_private_redis(test: &str, overrides: &[(&str, &str)]) -> (Self, PrivateRedis) {
        let dir = test_dir(test);
        let logs = Logs::default();
        let redis = PrivateRedis::start_with_logs_in(&dir).await;
        logs.add(redis.log_path().to_path_buf());
        let namespace = Namespace::on(&redis.url(), "sf-proc");
        let cluster = Self::build(dir, logs, namespace, overrides, None).await;
        (cluster, redis)
    }

    async fn build(
        dir: PathBuf,
        logs: Logs,
        namespace: Namespace,
        overrides: &[(&str, &str)],
        postgres: Option<PrivatePostgres>,
    ) -> Self {
        let _ = worker_bin();
        let print_logs = PrintLogsOnFailure(logs.clone());
        let db = match &postgres {
            Some(server) => TestDb::empty_on(&server.url()).await,
            None => TestDb::empty(Backend::Postgres).await,
        };
        let smtp = TestSmtp::start(Behaviour::Accept);
        let mut env: Env = [
            ("APP_ENV", "development"),
            ("DATABASE_URL", db.url.as_str()),
            ("REDIS_URL", namespace.url.as_str()),
            ("QUEUE_NAMESPACE", namespace.name.as_str()),
            ("JWT_SECRET", JWT_SECRET),
            ("SMTP_URL", smtp.url().as_str()),
            ("MAIL_FROM", testkit::MAIL_FROM),
            ("DATA_DIR", &dir.to_string_lossy()),
            ("EMBEDDED_WORKER", "false"),
            ("SEED_DEMO_DATA", "false"),
            ("RUST_LOG", "info,sqlx=warn"),
            ("RUST_BACKTRACE", "1"),
            ("NO_COLOR", "1"),
            // Quick retries, short timeouts.
            ("JOB_MAX_ATTEMPTS", "3"),
            ("JOB_BACKOFF_BASE_MS", "100"),
            ("JOB_BACKOFF_MAX_MS", "500"),
            ("CAPTURE_TIMEOUT_MS", "2000"),
            ("SANDBOX_TIMEOUT_MS", "60000"),
            ("SWEEP_INTERVAL_MS", "200"),
            ("DISPATCH_GRACE_MS", "500"),
            // The smallest the worker accepts: its queue heartbeat is 5 s
            // (not configurable) and orphan_after must be at least twice
            // that plus 1 s.
            ("ORPHAN_AFTER_SECS", "11"),
            ("SHUTDOWN_DEADLINE_SECS", "8"),
            // Fixtures sign up tens of customers from this one address,
            // more than a shop allows an hour (10).
            ("RATE_LIMIT_REGISTER_IP", "200/1h"),
            // ... and place tens of orders per customer within seconds:
            // more than a client's query cost bucket holds (1000 points; a
            // sign-up or an order costs about 100). The bucket's own tests
            // are in tests/api/cost.rs.
            ("COST_BUCKET_SIZE", "100000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (key, value) in overrides {
            env.insert((*key).to_owned(), (*value).to_owned());
        }
        let port = free_port();
        let mut api_env = env.clone();
        api_env.insert("API_BIND".into(), format!("127.0.0.1:{port}"));
        let mut api = Process::spawn("api", &api_bin(), &[], &api_env, port, &dir, &logs);
        api.wait_until_serving("/healthz").await;
        Self {
            api,
            smtp,
            env,
            dir,
            graphql: GraphqlClient::new(format!("http://127.0.0.1:{port}")),
            logs,
            _namespace: namespace,
            workers_started: 0,
            db,
            postgres,
            _print_logs: print_logs,
        }
    }

    /// Starts `worker run` with the cluster's environment plus `overrides`
    /// and waits until its `/readyz` answers (database and queue reachable).
    pub async fn start_worker(&mut self, overrides: &[(&str, &str)]) -> Process {
        self.start_worker_ready_at("/readyz", overrides).await
    }

    /// Starts `worker run` and waits until `path` answers 200 (`/healthz`:
    /// alive, though its queue may be down).
    pub async fn start_worker_ready_at(&mut self, path: &str, overrides: &[(&str, &str)]) -> Process {
        self.workers_started += 1;
        let name = format!("worker-{}", self.workers_started);
        let port = free_port();
        let mut env = self.env.clone();
        env.insert("WORKER_BIND".into(), format!("127.0.0.1:{port}"));
        for (key, value) in overrides {
            env.insert((*key).to_owned(), (*value).to_owned());
        }
        let mut worker = Process::spawn(&name, &worker_bin(), &["run"], &env, port, &self.dir, &self.logs);
        worker.wait_until_serving(path).await;
        worker
    }

    /// Starts another api process with the cluster's environment (a second
    /// instance behind the same database and Redis) and waits for `/healthz`.
    pub async fn start_api(&mut self, name: &str) -> Process {
        let port = free_port();
        let mut env = self.env.clone();
        env.insert("API_BIND".into(), format!("127.0.0.1:{port}"));
        let mut api = Process::spawn(name, &api_bin(), &[], &env, port, &self.dir, &self.logs);
        api.wait_until_serving("/healthz").await;
        api
    }

    /// The port of the test's SMTP server.
    pub fn smtp_port(&self) -> u16 {
        let url = self.smtp.url();
        url.rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("a port in {url}"))
    }

    // ----------------------------------------------------------- GraphQL

    /// POSTs a GraphQL request over `application/json`; returns the body.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.graphql.post(token, query, variables).await
    }

    /// Creates an admin directly in the database (as `api create-admin`
    /// does) and signs in over GraphQL.
    pub async fn admin(&self) -> Session {
        self.graphql.admin(&self.db.conn).await
    }

    /// Registers a customer over GraphQL (which also sends a welcome email).
    pub async fn register(&self, email: &str) -> Session {
        self.graphql.register(email).await
    }

    /// Registers `count` customers `<prefix>-<i>@example.com`, two at a time.
    pub async fn register_many(&self, prefix: &str, count: usize) -> Vec<Session> {
        let mut sessions = Vec::with_capacity(count);
        for pair in (0..count).collect::<Vec<_>>().chunks(2) {
            let registered = futures::future::join_all(
                pair.iter()
                    .map(|i| self.register_owned(format!("{prefix}-{i}@example.com"))),
            )
            .await;
            sessions.extend(registered);
        }
        sessions
    }

    async fn register_owned(&self, email: String) -> Session {
        self.register(&email).await
    }

    /// Creates an active EUR product at €15.00 as `admin`; returns its id.
    pub async fn create_product(&self, admin: &Session, sku: &str, stock: i32) -> String {
        self.graphql.create_product(admin, sku, 1500, stock).await
    }

    /// Asks for an order of one `product` paid with `payment_token` under
    /// `idempotency_key`; returns the response body, whatever it says.
    pub async fn try_place_order(
        &self,
        customer: &Session,
        product: &str,
        payment_token: &str,
        idempotency_key: &str,
    ) -> Value {
        self.graphql(
            Some(&customer.access_token),
            "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id status } }",
            json!({ "input": {
                "lines": [{ "productId": product, "quantity": 1 }],
                "paymentToken": payment_token,
                "idempotencyKey": idempotency_key,
            }}),
        )
        .await
    }

    /// Places an order of one `product` paid with `payment_token`; returns its id.
    pub async fn place_order(&self, customer: &Session, product: &str, payment_token: &str) -> String {
        let key = uuid::Uuid::now_v7().to_string();
        let body = self.try_place_order(customer, product, payment_token, &key).await;
        let order = &body["data"]["placeOrder"];
        assert_eq!(order["status"], "PENDING_PAYMENT", "placeOrder accepted: {body}");
        order["id"]
            .as_str()
            .unwrap_or_else(|| panic!("placeOrder returned an id: {body}"))
            .to_owned()
    }

    /// `{ status payment { status attempts lastError } }` of an order.
    pub async fn order(&self, token: &str, id: &str) -> Value {
        let body = self
            .graphql(
                Some(token),
                "query($id: ID!) { order(id: $id) { status payment { status attempts lastError } } }",
                json!({ "id": id }),
            )
            .await;
        let order = body["data"]["order"].clone();
        assert!(order.is_object(), "order {id} readable: {body}");
        order
    }

    /// How many orders have `status` (as seen by an admin).
    pub async fn count_orders(&self, admin: &Session, status: &str) -> i64 {
        let body = self
            .graphql(
                Some(&admin.access_token),
                "query($status: OrderStatus) { orders(first: 1, status: $status) { totalCount } }",
                json!({ "status": status }),
            )
            .await;
        body["data"]["orders"]["totalCount"]
            .as_i64()
            .unwrap_or_else(|| panic!("orders counted: {body}"))
    }

    /// The dead jobs, as an admin sees them: `[{ name attempts lastError }]`.
    pub async fn dead_jobs(&self, admin: &Session) -> Vec<Value> {
        let body = self
            .graphql(
                Some(&admin.access_token),
                "{ deadJobs(first: 100) { edges { node { name attempts lastError } } } }",
                json!({}),
            )
            .await;
        body["data"]["deadJobs"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("dead jobs listed: {body}"))
            .iter()
            .map(|edge| edge["node"].clone())
            .collect()
    }

    // -------------------------------------------------------------- mail

    /// (subject, recipient) of every email the SMTP server received.
    pub fn mail(&self) -> Vec<(String, String)> {
        self.smtp
            .received()
            .iter()
            .map(|message| {
                let parsed = parse(&message.data);
                (parsed.subject, parsed.to)
            })
            .collect()
    }

    /// How many emails arrived per subject.
    pub fn mail_by_subject(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for (subject, _) in self.mail() {
            *counts.entry(subject).or_default() += 1;
        }
        counts
    }

    /// Waits until `count` emails whose subject contains `fragment` arrived.
    pub async fn wait_for_mail(&self, fragment: &str, count: usize, within: Duration) {
        eventually(within, &format!("{count} emails about {fragment:?}"), || async {
            let found = self.mail().iter().filter(|(s, _)| s.contains(fragment)).count();
            if found >= count {
                Ok(())
            } else {
                Err(format!("{found} of them; {}", self.job_summary().await))
            }
        })
        .await;
    }

    /// Waits until exactly `total` orders are PAID, as an admin counts them.
    pub async fn wait_until_all_paid(&self, admin: &Session, total: usize, within: Duration) {
        eventually(within, &format!("all {total} orders PAID"), || async {
            let paid = self.count_orders(admin, "PAID").await;
            if usize::try_from(paid).is_ok_and(|paid| paid == total) {
                Ok(())
            } else {
                Err(format!("{paid} of {total} PAID; {}", self.job_summary().await))
            }
        })
        .await;
    }

    /// Waits for each order's confirmation and receipt, checks each went
    /// out once to its customer, and that nothing but them and `welcomes`
    /// welcome emails was sent.
    pub async fn assert_orders_mailed_once(&self, orders: &[(String, String)], welcomes: usize) {
        let total = orders.len();
        self.wait_for_mail("Payment received", total, Duration::from_secs(30))
            .await;
        self.wait_for_mail("Order ", total, Duration::from_secs(30)).await;
        self.assert_one_confirmation_and_one_receipt(orders);
        assert_eq!(
            self.mail().len(),
            welcomes + 2 * total,
            "welcomes, confirmations and receipts, nothing twice: {:?}",
            self.mail_by_subject()
        );
    }

    /// Checks that each order got exactly one confirmation and one receipt,
    /// sent to `recipient(order)`, and nothing else about it.
    pub fn assert_one_confirmation_and_one_receipt(&self, orders: &[(String, String)]) {
        let mail = self.mail();
        for (order, recipient) in orders {
            for subject in [
                format!("Order {order} received"),
                format!("Payment received for order {order}"),
            ] {
                let to: Vec<&String> = mail
                    .iter()
                    .filter(|(s, _)| *s == subject)
                    .map(|(_, to)| to)
                    .collect();
                assert_eq!(to, [recipient], "exactly one {subject:?}, to {recipient}");
            }
        }
    }

    /// One `sandbox_ok` order of `product` per customer, placed one after
    /// another; each order's id with its customer.
    pub async fn order_one_each(&self, customers: &[Session], product: &str) -> Vec<(String, Session)> {
        let mut orders = Vec::with_capacity(customers.len());
        for customer in customers {
            let order = self.place_order(customer, product, "sandbox_ok").await;
            orders.push((order, customer.clone()));
        }
        orders
    }

    /// Waits until every one of `orders` (its id, its customer) is PAID.
    pub async fn wait_until_paid(&self, orders: &[(String, Session)], within: Duration) {
        eventually(within, "every order PAID", || async {
            let mut unpaid = 0;
            for (order, customer) in orders {
                if self.order(&customer.access_token, order).await["status"] != "PAID" {
                    unpaid += 1;
                }
            }
            if unpaid == 0 {
                Ok(())
            } else {
                Err(format!("{unpaid} not PAID; {}", self.job_summary().await))
            }
        })
        .await;
    }

    /// Waits for every order's receipt and the `customers` welcomes, then
    /// checks that each order's confirmation and receipt, and each
    /// welcome, went out exactly once.
    pub async fn assert_every_email_once(&self, orders: &[(String, Session)], customers: usize) {
        self.wait_for_mail("Payment received", orders.len(), Duration::from_secs(60))
            .await;
        // The confirmations too: on a loaded machine one may still be on its
        // way after its order's receipt went out (both jobs start together).
        self.wait_for_mail("received", 2 * orders.len(), Duration::from_secs(60))
            .await;
        self.wait_for_mail("Welcome", customers, Duration::from_secs(60))
            .await;
        let recipients: Vec<(String, String)> = orders
            .iter()
            .map(|(order, customer)| (order.clone(), customer.email.clone()))
            .collect();
        self.assert_one_confirmation_and_one_receipt(&recipients);
        let welcomes = self.mail_by_subject().get("Welcome to Storefront").copied();
        assert_eq!(welcomes, Some(customers), "one welcome each");
    }

    /// Where the jobs are: received mail by subject, outbox rows by state.
    pub async fn job_summary(&self) -> String {
        let mut subjects: Vec<String> = self.mail().into_iter().map(|(s, _)| s).collect();
        if subjects.len() > 10 {
            let more = subjects.len() - 10;
            subjects.truncate(10);
            subjects.push(format!("… and {more} more"));
        }
        let rows = entity::tables::outbox::Entity::find()
            .all(&self.db.conn)
            .await
            .unwrap_or_default();
        let mut states: BTreeMap<String, usize> = BTreeMap::new();
        for row in &rows {
            let state = match (row.dispatched_at, row.completed_at) {
                (None, _) => "waiting",
                (Some(_), None) => "dispatched",
                (Some(_), Some(_)) => "completed",
            };
            *states
                .entry(format!("{} attempt {} {state}", row.job_name, row.attempt))
                .or_default() += 1;
        }
        format!("mail received: {subjects:?}; outbox: {states:?}")
    }

    // ----------------------------------------------------------- metrics

    /// The `/metrics` page of `process` (a worker, or an api in development).
    pub async fn metrics_page(&self, process: &Process) -> String {
        self.graphql
            .http
            .get(process.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// The value of one series (`name{labels}` exactly as the page spells
    /// it) on `process`'s `/metrics`, if it is there.
    pub async fn metric(&self, process: &Process, series: &str) -> Option<f64> {
        self.metrics_page(process)
            .await
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// The sum of `storefront_jobs_finished_total` on a worker's `/metrics`.
    pub async fn jobs_finished(&self, worker: &Process) -> u64 {
        let page = self.metrics_page(worker).await;
        page.lines()
            .filter(|line| line.starts_with("storefront_jobs_finished_total{"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

// ------------------------------------------------------------------ SMTP

/// A link to an SMTP server that a test can slow down or cut: a TCP relay
/// that holds each chunk the server sends for `delay` (so every SMTP
/// exchange takes a while and an email job stays in flight long enough to
/// signal its worker), and that [`SlowRelay::cut`] takes down — listener
/// closed (connections refused) and open connections dropped — until
/// [`SlowRelay::restore`] listens on the same port again.
pub struct SlowRelay {
    pub port: u16,
    upstream: u16,
    delay: Duration,
    /// The accept loop; it owns the connections, so aborting it drops them.
    accept: Option<tokio::task::JoinHandle<()>>,
}

impl SlowRelay {
    pub async fn start(upstream: u16, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the relay");
        let port = listener.local_addr().expect("relay address").port();
        let mut link = Self {
            port,
            upstream,
            delay,
            accept: None,
        };
        link.serve(listener);
        link
    }

    fn serve(&mut self, listener: TcpListener) {
        let (upstream, delay) = (self.upstream, self.delay);
        self.accept = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                connections.spawn(relay(client, upstream, delay));
                while connections.try_join_next().is_some() {}
            }
        }));
    }

    /// The server becomes unreachable: new connections are refused, open ones drop.
    pub fn cut(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
    }

    /// The server is reachable again, on the same port.
    pub async fn restore(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the relay's port again");
        self.serve(listener);
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }
}

impl Drop for SlowRelay {
    fn drop(&mut self) {
        self.cut();
    }
}

async fn relay(client: TcpStream, upstream: u16, delay: Duration) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let upstream_copy = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
        let _ = to_server.shutdown().await;
    });
    let mut buffer = vec![0_u8; 16 * 1024];
    while let Ok(read) = from_server.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        tokio::time::sleep(delay).await;
        if to_client.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to_client.shutdown().await;
    upstream_copy.abort();
}
