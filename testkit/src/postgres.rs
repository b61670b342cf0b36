//! A throw-away PostgreSQL server of one test's own, for tests that restart
//! it (never the shared one at `DATABASE_URL`).
//!
//! It runs from `PG_BIN_DIR` (which `scripts/test` exports), else the
//! newest `/usr/lib/postgresql/*/bin`. `initdb` and `postgres` refuse to run
//! as root, so as root they run as the `postgres` system user (as
//! `scripts/lib/services.sh` does), with the files in a directory of the
//! temp dir that user can reach.
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A private PostgreSQL on a free loopback port, trusting local users,
/// tuned for speed over durability; stopped and deleted when dropped.
pub struct PrivatePostgres {
    pub port: u16,
    bin: PathBuf,
    dir: PathBuf,
    /// The system user it runs as when we are root.
    run_as: Option<&'static str>,
    running: bool,
}

impl PrivatePostgres {
    /// Initialises a cluster in a fresh temporary directory and starts it.
    ///
    /// # Panics
    /// When no PostgreSQL binaries are found or the server does not start.
    pub async fn start() -> Self {
        tokio::task::spawn_blocking(Self::start_blocking)
            .await
            .expect("start the private PostgreSQL")
    }

    fn start_blocking() -> Self {
        let dir = std::env::temp_dir().join(format!("storefront-pg-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let run_as = running_as_root().then_some("postgres");
        let mut pg = Self {
            port: free_port(),
            bin: bin_dir(),
            dir,
            run_as,
            running: false,
        };
        if let Some(user) = run_as {
            pg.run("chown", &["-R", &format!("{user}:"), &pg.dir.to_string_lossy()]);
        }
        let data = pg.data().to_string_lossy().into_owned();
        let initdb = pg.bin.join("initdb").to_string_lossy().into_owned();
        pg.run_pg(
            &initdb,
            &[
                "-D",
                &data,
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        let conf = format!(
            "\n# testkit: a throw-away cluster, speed over durability\n\
             listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             max_connections = 200\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             log_min_messages = warning\n",
            pg.port,
            pg.dir.display()
        );
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(pg.data().join("postgresql.conf"))
            .expect("open postgresql.conf");
        std::io::Write::write_all(&mut file, conf.as_bytes()).expect("write postgresql.conf");
        pg.start_server();
        pg
    }

    /// The URL of its `postgres` database as the `postgres` superuser.
    #[must_use]
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Its log file (every start appends to it).
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// Restarts it on the same port: a fast shutdown (every session is
    /// terminated with 57P01, as `systemctl restart postgresql` does), then
    /// a start. Returns how long the server was unreachable. Blocks a
    /// runtime thread meanwhile: the test's runtime must be multi-threaded.
    pub fn restart(&mut self) -> Duration {
        tokio::task::block_in_place(|| {
            let started = Instant::now();
            self.stop_server("fast");
            self.start_server();
            started.elapsed()
        })
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn pg_ctl(&self) -> String {
        self.bin.join("pg_ctl").to_string_lossy().into_owned()
    }

    fn start_server(&mut self) {
        let (data, log) = (
            self.data().to_string_lossy().into_owned(),
            self.log_path().to_string_lossy().into_owned(),
        );
        self.run_pg(
            &self.pg_ctl(),
            &["-D", &data, "-l", &log, "-w", "-t", "60", "start"],
        );
        self.running = true;
    }

    fn stop_server(&mut self, mode: &str) {
        let data = self.data().to_string_lossy().into_owned();
        self.run_pg(
            &self.pg_ctl(),
            &["-D", &data, "-m", mode, "-w", "-t", "60", "stop"],
        );
        self.running = false;
    }

    /// Runs a PostgreSQL program (as the `postgres` user when we are root).
    fn run_pg(&self, program: &str, args: &[&str]) {
        match self.run_as {
            Some(user) => {
                let mut full = vec!["-u", user, "--", program];
                full.extend_from_slice(args);
                self.run("runuser", &full);
            }
            None => self.run(program, args),
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let output = Command::new(program)
            .args(args)
            // An unreadable current directory must not matter to the postgres user.
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed ({}): {}{}\nlog: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.log_path()).unwrap_or_default()
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.data().to_string_lossy().into_owned();
            let pg_ctl = self.pg_ctl();
            let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
            let _ = match self.run_as {
                Some(user) => Command::new("runuser")
                    .args(["-u", user, "--", &pg_ctl])
                    .args(args)
                    .current_dir("/")
                    .output(),
                None => Command::new(&pg_ctl).args(args).current_dir("/").output(),
            };
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `PG_BIN_DIR`, else the newest `/usr/lib/postgresql/<version>/bin`.
fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .expect("PostgreSQL server binaries: set PG_BIN_DIR (scripts/test does) or install postgresql")
}

/// Whether this process runs as root (it owns `/proc/self` then).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}
