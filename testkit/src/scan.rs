//! Looking for a value (a secret that must not be kept) everywhere a test's
//! world stores data: every column of every table, whatever the schema
//! holds (a table added later is covered without a change here), and every
//! key of a Redis namespace, whatever its type.
use redis::Value;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// `table.column` of every cell whose text form contains `needle`, on
/// SQLite or PostgreSQL. Every column is compared as text (`CAST(.. AS
/// TEXT)`), so JSON, numbers and blobs are searched too.
///
/// # Panics
/// When the catalog or a table cannot be read.
pub async fn database_cells_holding(conn: &DatabaseConnection, needle: &str) -> Vec<String> {
    let backend = conn.get_database_backend();
    let (columns, find) = match backend {
        DbBackend::Sqlite => (
            "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' ORDER BY 1, 2",
            "instr",
        ),
        DbBackend::Postgres => (
            "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
             WHERE table_schema = current_schema() ORDER BY 1, 2",
            "strpos",
        ),
        other => panic!("no scan for {other:?}"),
    };
    let rows = conn
        .query_all_raw(Statement::from_string(backend, columns))
        .await
        .expect("list the columns");
    assert!(!rows.is_empty(), "the schema has tables");
    let mut found = Vec::new();
    for row in rows {
        let table: String = row.try_get("", "t").expect("table name");
        let column: String = row.try_get("", "c").expect("column name");
        let placeholder = if backend == DbBackend::Postgres { "$1" } else { "?" };
        let sql = format!(
            "SELECT COUNT(*) AS n FROM {} WHERE {find}(CAST({} AS TEXT), {placeholder}) > 0",
            quoted(&table),
            quoted(&column)
        );
        let hit = conn
            .query_one_raw(Statement::from_sql_and_values(backend, sql, [needle.into()]))
            .await
            .unwrap_or_else(|e| panic!("scan {table}.{column}: {e}"))
            .expect("a count");
        let n: i64 = hit.try_get("", "n").expect("count");
        if n > 0 {
            found.push(format!("{table}.{column}"));
        }
    }
    found
}

fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// What a scan of a Redis namespace saw.
#[derive(Debug, Default)]
pub struct RedisScan {
    /// Keys of the namespace (`<namespace>*`) read.
    pub keys: usize,
    /// Keys whose name or any value (string, list item, hash field or
    /// value, set or sorted-set member, stream entry) contains the needle.
    pub holding: Vec<String>,
}

/// Reads every key of `namespace` on the Redis at `url` and reports which
/// hold `needle` anywhere.
///
/// # Panics
/// When Redis cannot be read.
pub async fn redis_keys_holding(url: &str, namespace: &str, needle: &str) -> RedisScan {
    let client = redis::Client::open(url).expect("a Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis");
    let keys: Vec<Vec<u8>> = {
        let mut iter = redis::AsyncCommands::scan_match::<_, Vec<u8>>(&mut conn, format!("{namespace}*"))
            .await
            .expect("scan");
        let mut keys = Vec::new();
        while let Some(key) = iter.next_item().await {
            keys.push(key.expect("a key"));
        }
        keys
    };
    let mut scan = RedisScan {
        keys: keys.len(),
        holding: Vec::new(),
    };
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("TYPE");
        let read = match kind.as_str() {
            "string" => redis::cmd("GET").arg(&key).clone(),
            "list" => redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).clone(),
            "hash" => redis::cmd("HGETALL").arg(&key).clone(),
            "set" => redis::cmd("SMEMBERS").arg(&key).clone(),
            "zset" => redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).clone(),
            "stream" => redis::cmd("XRANGE").arg(&key).arg("-").arg("+").clone(),
            // Gone since the SCAN ("none"), or a type nothing here writes.
            _ => continue,
        };
        let value: Value = read.query_async(&mut conn).await.expect("read a key");
        let mut bytes = key.clone();
        flatten(&value, &mut bytes);
        if contains(&bytes, needle.as_bytes()) {
            scan.holding.push(String::from_utf8_lossy(&key).into_owned());
        }
    }
    scan
}

/// Appends every string inside `value` to `out`, separated by NUL bytes.
fn flatten(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::BulkString(bytes) => out.extend_from_slice(bytes),
        Value::SimpleString(text) | Value::VerbatimString { text, .. } => {
            out.extend_from_slice(text.as_bytes())
        }
        Value::Array(items) | Value::Set(items) => items.iter().for_each(|item| flatten(item, out)),
        Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            flatten(k, out);
            flatten(v, out);
        }),
        Value::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
        _ => {}
    }
    out.push(0);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend};

    use super::{database_cells_holding, redis_keys_holding};
    use crate::{Backend, Namespace, TestDb};

    async fn a_table_added_later_is_scanned_too(backend: Backend) {
        let db = TestDb::migrated(backend).await;
        let (create, insert) = match db.conn.get_database_backend() {
            DbBackend::Postgres => (
                "CREATE TABLE later_added (id BIGINT, note TEXT, data JSONB)",
                r#"INSERT INTO later_added VALUES (7, 'plain', '{"k": "needle-in-json"}')"#,
            ),
            _ => (
                "CREATE TABLE later_added (id INTEGER, note TEXT, data BLOB)",
                "INSERT INTO later_added VALUES (7, 'plain', CAST('{\"k\": \"needle-in-json\"}' AS BLOB))",
            ),
        };
        db.conn.execute_unprepared(create).await.expect("create");
        db.conn.execute_unprepared(insert).await.expect("insert");

        assert_eq!(
            database_cells_holding(&db.conn, "needle-in-json").await,
            ["later_added.data"]
        );
        assert!(
            database_cells_holding(&db.conn, "nowhere-at-all")
                .await
                .is_empty()
        );
    }
    crate::on_both_backends!(later_tables, a_table_added_later_is_scanned_too);

    #[tokio::test]
    async fn every_redis_type_is_read() {
        let ns = Namespace::new("scan");
        let client = redis::Client::open(ns.url.as_str()).expect("url");
        let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
        let key = |kind: &str| format!("{}:{kind}", ns.name);
        let mut pipe = redis::pipe();
        pipe.set(key("string"), "a needle here")
            .rpush(key("list"), vec!["x", "needle"])
            .hset(key("hash-value"), "field", "needle")
            .hset(key("hash-field"), "needle", "value")
            .sadd(key("set"), "needle")
            .zadd(key("zset"), "needle", 1)
            .set(key("clean"), "nothing to see");
        pipe.cmd("XADD")
            .arg(key("stream"))
            .arg("*")
            .arg("f")
            .arg("needle");
        pipe.exec_async(&mut conn).await.expect("write the probes");

        let scan = redis_keys_holding(&ns.url, &ns.name, "needle").await;
        let mut holding = scan.holding.clone();
        holding.sort();
        let mut expected: Vec<String> = [
            "hash-field",
            "hash-value",
            "list",
            "set",
            "stream",
            "string",
            "zset",
        ]
        .map(key)
        .to_vec();
        expected.sort();
        assert_eq!((scan.keys, holding), (8, expected));
    }
}
