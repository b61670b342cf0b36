//! Several `INSERT`s that belong together, in one round trip where the
//! database allows it.
//!
//! PostgreSQL runs data-modifying statements inside `WITH`: `WITH w0 AS
//! (INSERT …), w1 AS (INSERT …) SELECT txid_current()` writes every row in
//! one statement, atomically (the statement fails as a whole), and returns
//! the transaction's id on the way (what `retry::commit_txid` needs). The
//! foreign keys between the rows hold: PostgreSQL checks them when the
//! whole statement has run, so a row may refer to one inserted by an
//! earlier `INSERT` of the same statement. SQLite only allows `SELECT` in
//! `WITH`: there each `INSERT` runs on its own, in the order given, which
//! costs no round trip (the database is in process).
use sea_orm::sea_query::{Alias, CommonTableExpression, Expr, InsertStatement, Query, WithClause};
use sea_orm::{ConnectionTrait, DbBackend, DbErr};

use super::retry::TXID;

/// Runs `inserts` in order, as one statement on PostgreSQL (see the
/// module), and returns the transaction's id there (`None` on SQLite).
/// Meant for the caller's transaction: on SQLite a failure leaves the
/// earlier inserts for the caller's rollback.
///
/// # Errors
/// The database's error (on PostgreSQL the first violated constraint of
/// any of the inserts: nothing of the statement is written).
pub async fn insert_all<C: ConnectionTrait>(
    conn: &C,
    inserts: Vec<InsertStatement>,
) -> Result<Option<i64>, DbErr> {
    if conn.get_database_backend() != DbBackend::Postgres {
        for insert in &inserts {
            conn.execute(insert).await?;
        }
        return Ok(None);
    }
    let mut with = WithClause::new();
    for (i, insert) in inserts.into_iter().enumerate() {
        with.cte(
            CommonTableExpression::new()
                .query(insert)
                .table_name(Alias::new(format!("w{i}")))
                .to_owned(),
        );
    }
    let statement = with.query(Query::select().expr(Expr::cust(TXID)).to_owned());
    let row = conn
        .query_one(&statement)
        .await?
        .ok_or_else(|| DbErr::Custom("WITH … SELECT txid_current() gave no row".into()))?;
    Ok(Some(row.try_get_by_index::<i64>(0)?))
}
