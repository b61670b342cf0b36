//! Headless Chromium for tests, driven over WebDriver by `fantoccini`.
//!
//! `scripts/test` installs `chromium` and `chromium-driver` and exports
//! `CHROMEDRIVER`; [`Browser::start`] runs that chromedriver on a free port
//! with a throw-away profile, and stopping (or dropping) the `Browser` ends it.

use std::{
    net::{Ipv4Addr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, wd::Capabilities};
use hyper_util::client::legacy::connect::HttpConnector;
use tempfile::TempDir;

/// A WebDriver session in a headless Chromium of its own.
pub struct Browser {
    pub client: Client,
    /// The chromedriver we started: killed when the `Browser` goes away.
    driver: Child,
    /// Chromium's `--user-data-dir`, fresh for each browser so that no
    /// state leaks from one test into another; deleted on drop.
    _profile: TempDir,
}

/// How long chromedriver may take to listen.
const DRIVER_START: Duration = Duration::from_secs(20);

impl Browser {
    /// Starts chromedriver from `$CHROMEDRIVER` and opens a session.
    ///
    /// # Panics
    ///
    /// When `CHROMEDRIVER` is unset, or chromedriver or Chromium do not
    /// start: the message says what to install.
    pub async fn start() -> Self {
        let path = std::env::var_os("CHROMEDRIVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!(
                    "CHROMEDRIVER is not set: run the tests through scripts/test (it installs \
                 chromium and chromium-driver), or install them and set \
                 CHROMEDRIVER=/usr/bin/chromedriver"
                )
            });
        let profile = tempfile::Builder::new()
            .prefix("storefront-chromium-")
            .tempdir()
            .expect("cannot create a temporary Chromium profile directory");
        let port = free_port();
        let mut driver = spawn_driver(&path, port);
        wait_until_listening(&mut driver, &path, port);

        let capabilities = chromium_capabilities(profile.path());
        let client = match ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => client,
            Err(error) => {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("{} did not start Chromium: {error}", path.display());
            }
        };
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Ends the WebDriver session (Chromium exits), then chromedriver.
    pub async fn stop(self) {
        // The session may be gone already; chromedriver is killed on drop.
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn spawn_driver(path: &Path, port: u16) -> Child {
    Command::new(path)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run chromedriver {}: {error}", path.display()))
}

fn wait_until_listening(driver: &mut Child, path: &Path, port: u16) {
    let deadline = Instant::now() + DRIVER_START;
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        if let Ok(Some(status)) = driver.try_wait() {
            panic!("chromedriver {} exited at start-up ({status})", path.display());
        }
        if Instant::now() > deadline {
            let _ = driver.kill();
            let _ = driver.wait();
            panic!(
                "chromedriver {} did not listen on port {port} within {DRIVER_START:?}",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port nobody listens on right now (chromedriver binds it a moment later).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("cannot find a free port on 127.0.0.1")
        .port()
}

fn chromium_capabilities(profile: &Path) -> Capabilities {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-quic",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--no-proxy-server",
        "--window-size=1280,900",
        &format!("--user-data-dir={}", profile.display()),
    ];
    let mut capabilities = Capabilities::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({ "args": args }),
    );
    capabilities
}
