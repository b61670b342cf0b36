//! Each test gets its own database.
//!
//! - PostgreSQL: a fresh database on the server at `DATABASE_URL` (an admin
//!   URL; `scripts/test` provisions one), dropped when the [`TestDb`] drops.
//!   A migrated one is a copy (`CREATE DATABASE … TEMPLATE`) of a template
//!   database migrated once, as crates.io's tests do: cloning costs a file
//!   copy where migrating costs dozens of DDL statements per test.
//! - SQLite: a fresh file in the temp directory, deleted on drop; a
//!   migrated one is a copy of a template file migrated once.
//!
//! Templates are named after a fingerprint of the migration sources (see
//! `build.rs`), made under a temporary name and renamed when complete, so
//! concurrent test processes share one and a changed migration gets a new
//! one. Nobody connects to a template after it is made (PostgreSQL refuses
//! to clone a database others are connected to).
//!
//! A missing `DATABASE_URL` fails the test with a message saying how to run
//! the suite: nothing is silently skipped.
use std::path::PathBuf;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection};

use entity::db;
use tokio::sync::OnceCell;

/// Fingerprint of the migration sources this crate was built with.
const FINGERPRINT: &str = env!("MIGRATIONS_FINGERPRINT");

/// Which database a storage test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database of its own for one test, removed when dropped.
pub struct TestDb {
    pub conn: DatabaseConnection,
    pub url: String,
    pub backend: Backend,
    cleanup: Cleanup,
}

enum Cleanup {
    SqliteFile(PathBuf),
    PostgresDatabase { admin_url: String, name: String },
}

/// The PostgreSQL admin URL from `DATABASE_URL`.
///
/// # Panics
/// When `DATABASE_URL` is unset or not a PostgreSQL URL: the suite needs one.
#[must_use]
pub fn postgres_admin_url() -> String {
    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => url,
        _ => panic!(
            "DATABASE_URL must point at a PostgreSQL server for the test suite; \
             run `scripts/test`, which provisions one"
        ),
    }
}

/// `admin_url` with its database name replaced by `name`.
fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = admin_url
        .split_once('?')
        .map_or((admin_url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

impl TestDb {
    /// A fresh, fully migrated database, cloned from the template.
    pub async fn migrated(backend: Backend) -> Self {
        let name = fresh_name();
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                std::fs::copy(sqlite_template().await, &path).expect("copy the SQLite template");
                Self::open_sqlite(path).await
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let template = postgres_template(&admin_url).await;
                Self::create_postgres(admin_url, name, Some(template)).await
            }
        }
    }

    /// A fresh database with no tables.
    pub async fn empty(backend: Backend) -> Self {
        let name = fresh_name();
        match backend {
            Backend::Sqlite => Self::open_sqlite(std::env::temp_dir().join(format!("{name}.db"))).await,
            Backend::Postgres => Self::create_postgres(postgres_admin_url(), name, None).await,
        }
    }

    /// A fresh database with no tables on the PostgreSQL server at
    /// `admin_url` (a [`crate::PrivatePostgres`], say).
    pub async fn empty_on(admin_url: &str) -> Self {
        Self::create_postgres(admin_url.to_owned(), fresh_name(), None).await
    }

    async fn open_sqlite(path: PathBuf) -> Self {
        let url = db::sqlite_url(&path);
        let conn = db::connect(&url, 8).await.expect("open SQLite test database");
        Self {
            conn,
            url,
            backend: Backend::Sqlite,
            cleanup: Cleanup::SqliteFile(path),
        }
    }

    async fn create_postgres(admin_url: String, name: String, template: Option<&str>) -> Self {
        let admin = db::connect(&admin_url, 1).await.expect("connect to DATABASE_URL");
        let sql = match template {
            Some(template) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
            None => format!("CREATE DATABASE \"{name}\""),
        };
        admin
            .execute_unprepared(&sql)
            .await
            .expect("create test database");
        admin.close().await.ok();
        let url = with_database(&admin_url, &name);
        let conn = db::connect(&url, 20).await.expect("connect to test database");
        Self {
            conn,
            url,
            backend: Backend::Postgres,
            cleanup: Cleanup::PostgresDatabase { admin_url, name },
        }
    }
}

fn fresh_name() -> String {
    format!("sf_test_{}", uuid::Uuid::now_v7().simple())
}

/// The PostgreSQL template of this run's migrations, made on first use.
async fn postgres_template(admin_url: &str) -> &'static str {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let name = format!("sf_template_{FINGERPRINT}");
            let admin = db::connect(admin_url, 1).await.expect("connect to DATABASE_URL");
            let exists = admin
                .query_one_raw(sea_orm::Statement::from_string(
                    admin.get_database_backend(),
                    format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
                ))
                .await
                .expect("look the template up")
                .is_some();
            if !exists {
                let building = fresh_name();
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{building}\""))
                    .await
                    .expect("create the template database");
                let conn = db::connect(&with_database(admin_url, &building), 1)
                    .await
                    .expect("connect to the template database");
                Migrator::up(&conn, None).await.expect("migrations apply");
                conn.close().await.expect("close the template database");
                let renamed = admin
                    .execute_unprepared(&format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\""))
                    .await;
                if renamed.is_err() {
                    // Another test process made it first: use theirs.
                    let sql = format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)");
                    admin.execute_unprepared(&sql).await.ok();
                }
            }
            admin.close().await.ok();
            name
        })
        .await
}

/// The SQLite template file of this run's migrations, made on first use.
async fn sqlite_template() -> &'static PathBuf {
    static TEMPLATE: OnceCell<PathBuf> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let path = std::env::temp_dir().join(format!("sf_template_{FINGERPRINT}.db"));
            if !path.exists() {
                let building = std::env::temp_dir().join(format!("{}.db", fresh_name()));
                let conn = db::connect(&db::sqlite_url(&building), 1)
                    .await
                    .expect("open the SQLite template");
                Migrator::up(&conn, None).await.expect("migrations apply");
                // Fold the write-ahead log into the file, so the file alone is the database.
                conn.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                    .await
                    .expect("checkpoint the template");
                conn.close().await.expect("close the SQLite template");
                std::fs::rename(&building, &path).expect("publish the SQLite template");
                for suffix in ["-wal", "-shm"] {
                    let mut file = building.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            path
        })
        .await
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::PostgresDatabase { admin_url, name } => {
                // Drop runs inside the test's runtime, which cannot block on
                // itself: use a private one on its own thread.
                let (admin_url, name) = (admin_url.clone(), name.clone());
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    runtime.block_on(async {
                        let admin = db::connect(&admin_url, 1).await.ok()?;
                        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        admin.execute_unprepared(&sql).await.ok()?;
                        admin.close().await.ok()
                    })
                });
                let _ = dropped.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name_and_keeps_parameters() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1/db?sslmode=disable", "t1"),
            "postgres://u:p@h:1/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "t1"), "postgres://h:1/t1");
    }
}
