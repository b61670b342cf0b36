//! Two api processes behind nginx, configured by `deploy/nginx/storefront.conf`
//! as committed (only its addresses changed): customers place orders through
//! nginx without pause, one api gets SIGTERM in the middle, drains and exits,
//! and nginx sends everything to the other. Every order is accepted exactly
//! once and PAID, and a subscription over `/graphql/ws` through nginx
//! outlives the server's 15 s ping and hears its order's events.
//!
//! nginx is the Debian package's binary (`NGINX_BIN`, else `nginx` on
//! `PATH` or `/usr/sbin/nginx`; `scripts/test` installs it when missing),
//! started in the foreground with its prefix, pid file, logs and temporary
//! files in the test's directory.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use testkit::{GraphqlClient, Session, WsClient};

use crate::harness::{Cluster, Env, Logs, Process, eventually, free_port};
use crate::subscriptions::{ORDER_UPDATED, next_state};

/// Customers placing orders at once, one after another each.
const SHOPPERS: usize = 4;
/// A shopper's pause between two orders.
const PAUSE: Duration = Duration::from_millis(100);
/// Orders accepted before the SIGTERM, and at least as many after it.
const ORDERS_BEFORE: usize = 30;

const PLACE_ORDER: &str = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id status } }";

/// The committed nginx configuration.
fn committed_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/storefront.conf")
}

/// The nginx binary: `NGINX_BIN`, `nginx` on `PATH`, or Debian's `/usr/sbin/nginx`.
fn nginx_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("NGINX_BIN") {
        return PathBuf::from(bin);
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("nginx"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("nginx not found: run scripts/test (it installs the nginx package), or set NGINX_BIN")
        })
}

/// `text` with each whole line (ignoring indentation) equal to a key
/// replaced by its value; every key must match exactly one line, so a
/// change to the committed file that this test would no longer exercise
/// fails here.
fn with_lines_replaced(text: &str, replacements: &[(&str, String)]) -> String {
    let mut used = vec![0_usize; replacements.len()];
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let trimmed = line.trim();
            match replacements.iter().position(|(from, _)| *from == trimmed) {
                Some(i) => {
                    used[i] += 1;
                    line.replacen(trimmed, &replacements[i].1, 1)
                }
                None => line.to_owned(),
            }
        })
        .collect();
    for ((from, _), count) in replacements.iter().zip(used) {
        assert_eq!(
            count,
            1,
            "exactly one line {from:?} in {}",
            committed_config().display()
        );
    }
    lines.join("\n")
}

/// nginx in the foreground (master and one worker process), stopped with
/// SIGTERM when dropped so that its worker does not outlive the test.
struct Nginx {
    process: Process,
    dir: PathBuf,
}

impl Nginx {
    async fn start(dir: &Path, logs: &Logs, upstreams: [u16; 2]) -> Self {
        let dir = dir.join("nginx");
        for sub in ["", "temp"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create the nginx directories");
        }
        let port = free_port();
        let committed =
            std::fs::read_to_string(committed_config()).expect("read deploy/nginx/storefront.conf");
        let site = with_lines_replaced(
            &committed,
            &[
                ("listen 80;", format!("listen 127.0.0.1:{port};")),
                (
                    "server 127.0.0.1:8081 max_fails=3 fail_timeout=10s;",
                    format!("server 127.0.0.1:{} max_fails=3 fail_timeout=10s;", upstreams[0]),
                ),
                (
                    "server 127.0.0.1:8082 max_fails=3 fail_timeout=10s;",
                    format!("server 127.0.0.1:{} max_fails=3 fail_timeout=10s;", upstreams[1]),
                ),
                (
                    "access_log /var/log/nginx/storefront.access.log storefront_json;",
                    format!("access_log {} storefront_json;", dir.join("access.log").display()),
                ),
            ],
        );
        std::fs::write(dir.join("storefront.conf"), site).expect("write storefront.conf");
        let d = dir.display();
        // What Debian's /etc/nginx/nginx.conf provides around the file,
        // with every path in the test's directory.
        let main = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log notice;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  client_body_temp_path {d}/temp/body;\n  proxy_temp_path {d}/temp/proxy;\n  \
             fastcgi_temp_path {d}/temp/fastcgi;\n  uwsgi_temp_path {d}/temp/uwsgi;\n  \
             scgi_temp_path {d}/temp/scgi;\n  include {d}/storefront.conf;\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), main).expect("write nginx.conf");
        logs.add(dir.join("error.log"));
        let prefix = format!("{d}/");
        let conf = format!("{d}/nginx.conf");
        let error_log = format!("{d}/error.log");
        let mut process = Process::spawn(
            "nginx",
            &nginx_bin(),
            &["-p", &prefix, "-c", &conf, "-e", &error_log],
            &Env::new(),
            port,
            &dir,
            logs,
        );
        process.wait_until_serving("/healthz").await;
        Self { process, dir }
    }

    fn url(&self, path: &str) -> String {
        self.process.url(path)
    }

    /// The access log's entries so far (`log_format storefront_json`).
    fn access_log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("a JSON log line ({e}): {line}"))
            })
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if !self.process.is_running() {
            return;
        }
        self.process.terminate();
        let asked = Instant::now();
        while self.process.is_running() && asked.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A customer's client: places an order and, as a real client would, sends
/// the same request with the same idempotency key again after a 502, 503 or
/// 504 or a broken connection. Returns the order's id and how many attempts
/// it took.
async fn place_order(
    http: &reqwest::Client,
    url: &str,
    customer: &Session,
    product: &str,
) -> (String, usize) {
    let request = json!({
        "query": PLACE_ORDER,
        "variables": { "input": {
            "lines": [{ "productId": product, "quantity": 1 }],
            "paymentToken": "sandbox_ok",
            "idempotencyKey": uuid::Uuid::now_v7().to_string(),
        }},
    });
    let mut failures = Vec::new();
    for attempt in 1..=20 {
        let sent = http
            .post(url)
            .bearer_auth(&customer.access_token)
            .header("accept", "application/json")
            .json(&request)
            .send()
            .await;
        match sent {
            Ok(response) if response.status() == 200 => match response.json::<Value>().await {
                Ok(body) => {
                    let id = body["data"]["placeOrder"]["id"]
                        .as_str()
                        .unwrap_or_else(|| panic!("placeOrder accepted: {body}"));
                    return (id.to_owned(), attempt);
                }
                Err(error) => failures.push(format!("body: {error}")),
            },
            Ok(response) if [502, 503, 504].contains(&response.status().as_u16()) => {
                failures.push(response.status().to_string());
            }
            Ok(response) => {
                let status = response.status();
                panic!(
                    "placeOrder answered {status}: {}",
                    response.text().await.unwrap_or_default()
                );
            }
            Err(error) => failures.push(error.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("placeOrder failed 20 times: {failures:?}")
}

/// What one shopper placed: `(order id, its customer)` and the attempts each took.
type Placed = Vec<(String, Session, usize)>;

/// Places orders one after another until `stop`, counting them in `accepted`.
async fn shop(
    http: reqwest::Client,
    url: String,
    customer: Session,
    product: String,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
) -> Placed {
    let mut placed = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let (id, attempts) = place_order(&http, &url, &customer, &product).await;
        placed.push((id, customer.clone(), attempts));
        accepted.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(PAUSE).await;
    }
    placed
}

async fn wait_for_accepted(accepted: &AtomicUsize, count: usize) {
    eventually(
        Duration::from_secs(60),
        &format!("{count} orders accepted"),
        || async {
            let now = accepted.load(Ordering::SeqCst);
            if now >= count {
                Ok(())
            } else {
                Err(format!("{now} accepted"))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_through_nginx_survive_a_sigterm_to_one_of_two_apis_each_accepted_once_and_paid() {
    // Arrange: two apis and two workers on PostgreSQL + Redis, nginx in front
    // Four shoppers stand for a crowd: each places orders back to back for
    // the whole run, beyond one customer's order limit (30/h), which is off.
    let mut cluster = Cluster::start("load_balancer", &[("RATE_LIMIT_PLACE_ORDER_USER", "off")]).await;
    let api_2 = cluster.start_api("api-2").await;
    let _worker_1 = cluster.start_worker(&[]).await;
    let _worker_2 = cluster.start_worker(&[]).await;
    let (port_1, port_2) = (cluster.api.port, api_2.port);
    let nginx = Nginx::start(&cluster.dir, &cluster.logs, [port_1, port_2]).await;
    // From here on every request of the test goes through nginx.
    let shop_front = GraphqlClient::new(nginx.url(""));
    cluster.graphql = shop_front.clone();
    let admin = cluster.admin().await;
    let product = cluster.create_product(&admin, "LB-1", 100_000).await;
    let customers = cluster.register_many("lb", SHOPPERS).await;

    // The request id: a sane one the client sent is kept end to end, any
    // other is replaced by nginx's own.
    for (sent, kept) in [
        (Some("lb-request-1"), true),
        (Some("not a sane id!"), false),
        (None, false),
    ] {
        let mut request = shop_front.http.get(nginx.url("/graphql?query=%7B__typename%7D"));
        if let Some(id) = sent {
            request = request.header("x-request-id", id);
        }
        let response = request.send().await.expect("GET /graphql through nginx");
        assert_eq!(response.status(), 200);
        let ids: Vec<&str> = response
            .headers()
            .get_all("x-request-id")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(ids.len(), 1, "one X-Request-Id: {ids:?}");
        let id = ids[0].to_owned();
        if kept {
            assert_eq!(Some(id.as_str()), sent);
        } else {
            assert!(
                id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
                "nginx's $request_id, not {sent:?}: {id}"
            );
        }
        // nginx writes the line once the answer is sent.
        eventually(
            Duration::from_secs(5),
            &format!("{id} in the access log"),
            || async {
                let logged = nginx.access_log();
                if logged
                    .iter()
                    .any(|e| e["request_id"] == id.as_str() && e["upstream_status"] == "200")
                {
                    Ok(())
                } else {
                    Err(format!("{logged:?}"))
                }
            },
        )
        .await;
    }

    // Act: shoppers place orders without pause; after ORDERS_BEFORE, api 1
    // gets SIGTERM.
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let graphql_url = nginx.url("/graphql");
    let shoppers: Vec<_> = customers
        .iter()
        .map(|customer| {
            tokio::spawn(shop(
                shop_front.http.clone(),
                graphql_url.clone(),
                customer.clone(),
                product.clone(),
                Arc::clone(&stop),
                Arc::clone(&accepted),
            ))
        })
        .collect();
    wait_for_accepted(&accepted, ORDERS_BEFORE).await;
    let served_before = nginx.access_log();
    cluster.api.terminate();
    let signalled = Instant::now();
    let status = cluster.api.exit_status(Duration::from_secs(20)).await;
    let drained = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "api 1 exit status {status}");
    let accepted_at_exit = accepted.load(Ordering::SeqCst);
    // Anything api 1 answered is logged by now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log_at_exit = nginx.access_log().len();

    // A subscription through nginx (on api 2, the one left) while the
    // shoppers go on: it sees its order settle, stays open past the
    // server's 15 s ping, and sees the order fulfilled.
    let watcher = &customers[0];
    let mut socket = WsClient::open(&nginx.url(""), Some(&watcher.access_token)).await;
    let opened = Instant::now();
    let (watched, _) = place_order(&shop_front.http, &graphql_url, watcher, &product).await;
    socket
        .subscribe("o", ORDER_UPDATED, json!({ "id": watched }))
        .await;
    let mut seen = Vec::new();
    while let Some((status, _)) = next_state(&mut socket, "o").await {
        let paid = status == "PAID";
        seen.push(status);
        if paid {
            break;
        }
    }
    assert_eq!(seen.last().map(String::as_str), Some("PAID"), "{seen:?}");
    tokio::time::sleep(Duration::from_secs(18).saturating_sub(opened.elapsed())).await;
    let fulfilled = shop_front
        .post(
            Some(&admin.access_token),
            "mutation($id: ID!) { fulfillOrder(id: $id) { status } }",
            json!({ "id": watched }),
        )
        .await;
    assert_eq!(
        fulfilled["data"]["fulfillOrder"]["status"], "FULFILLED",
        "{fulfilled}"
    );
    assert_eq!(
        next_state(&mut socket, "o").await,
        Some(("FULFILLED".to_owned(), "SETTLED".to_owned()))
    );
    assert_eq!(
        next_state(&mut socket, "o").await,
        None,
        "the operation completes"
    );
    assert!(
        socket.pings_answered >= 1,
        "the socket lived through a server ping (open {:?})",
        opened.elapsed()
    );

    wait_for_accepted(&accepted, accepted_at_exit + ORDERS_BEFORE).await;
    stop.store(true, Ordering::SeqCst);
    let mut orders = Vec::new();
    let mut retried = 0;
    for shopper in shoppers {
        for (id, customer, attempts) in shopper.await.expect("a shopper finished") {
            retried += usize::from(attempts > 1);
            orders.push((id, customer));
        }
    }

    // Assert: api 1 drained quickly; both apis served before it went, only
    // api 2 after (some requests tried api 1 first and moved on).
    assert!(
        drained < Duration::from_secs(10),
        "api 1 exited {drained:?} after SIGTERM"
    );
    let upstreams = |entries: &[Value]| -> Vec<String> {
        entries
            .iter()
            .filter(|e| e["uri"] == "/graphql")
            .map(|e| e["upstream_addr"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let (addr_1, addr_2) = (format!("127.0.0.1:{port_1}"), format!("127.0.0.1:{port_2}"));
    let before = upstreams(&served_before);
    assert!(
        before.contains(&addr_1) && before.contains(&addr_2),
        "both apis served before the SIGTERM: {before:?}"
    );
    let log = nginx.access_log();
    let after = upstreams(&log[log_at_exit..]);
    let moved_on = after.iter().filter(|a| a.contains(", ")).count();
    assert!(
        after.iter().all(|a| a.ends_with(&addr_2)),
        "after api 1 exited every request was answered by api 2: {after:?}"
    );
    let failed: Vec<&Value> = log
        .iter()
        .filter(|e| e["status"] != 200 && e["status"] != 101)
        .collect();
    eprintln!(
        "{} orders ({accepted_at_exit} when api 1 exited {drained:?} after SIGTERM); \
         {moved_on} requests tried api 1 first and went on to api 2; {retried} orders needed a \
         client retry; answers other than 200: {failed:?}",
        orders.len()
    );

    // ...every order accepted once: distinct ids, exactly as many orders
    // in the database as the shoppers were given (and the watched one)...
    let mut ids: Vec<&String> = orders.iter().map(|(id, _)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), orders.len(), "one order per idempotency key");
    let stored = entity::tables::orders::Entity::find()
        .count(&cluster.db.conn)
        .await
        .expect("count the orders");
    assert_eq!(
        stored,
        u64::try_from(orders.len() + 1).unwrap_or(u64::MAX),
        "no order lost, none twice"
    );

    // ...and PAID, each confirmed and receipted once.
    cluster
        .wait_until_all_paid(&admin, orders.len(), Duration::from_secs(90))
        .await;
    cluster.assert_every_email_once(&orders, SHOPPERS).await;
}
