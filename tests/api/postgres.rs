//! The pool's connections keep the statements they prepared: a text is prepared once per
//! connection and run by name afterwards, inside transactions too, within the configured bound.

use beryl_core_api::{
    adapters::postgres::{self, PgConnection},
    config::DatabaseSettings,
};

use crate::helpers::create_database;

const SUM: &str = "SELECT $1::int8 + 1";

async fn pool(statement_cache: usize) -> postgres::PgPool {
    let settings = DatabaseSettings {
        url: Some(create_database().await.as_str().into()),
        max_connections: 1,
        statement_cache,
        ..Default::default()
    };
    postgres::build_pool(&settings).unwrap().unwrap()
}

/// Statements with the text `sql` that the server holds prepared for this connection.
async fn prepared(conn: &PgConnection, sql: &str) -> i64 {
    conn.query_typed(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1",
        &[(&sql, tokio_postgres::types::Type::TEXT)],
    )
    .await
    .unwrap()[0]
        .get(0)
}

fn sum(rows: Vec<tokio_postgres::Row>) -> i64 {
    rows[0].get(0)
}

#[actix_rt::test]
async fn a_statement_is_prepared_once_per_connection_and_run_by_name_even_in_transactions() {
    let pool = pool(256).await;
    let mut conn = pool.get().await.unwrap();
    for n in 0..3_i64 {
        assert_eq!(sum(conn.query(SUM, &[&n]).await.unwrap()), n + 1);
    }
    assert_eq!((conn.statements().len(), prepared(&conn, SUM).await), (1, 1));

    // A transaction runs the same statement, and a rollback keeps it prepared.
    let tx = conn.transaction().await.unwrap();
    assert_eq!(tx.query_one(SUM, &[&41_i64]).await.unwrap().get::<_, i64>(0), 42);
    tx.execute("CREATE TABLE gone (id int8)", &[]).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(sum(conn.query(SUM, &[&1_i64]).await.unwrap()), 2);
    assert_eq!(prepared(&conn, SUM).await, 1);
    assert!(conn.query_opt("SELECT 1 FROM pg_tables WHERE tablename = 'gone'", &[]).await.unwrap().is_none());

    // A failing statement is not kept, and the connection goes on.
    assert!(conn.query("SELECT nonsense FROM nowhere", &[]).await.is_err());
    assert_eq!(prepared(&conn, "SELECT nonsense FROM nowhere").await, 0);
    assert_eq!(sum(conn.query(SUM, &[&2_i64]).await.unwrap()), 3);
}

#[actix_rt::test]
async fn the_cache_keeps_at_most_its_bound_and_none_when_turned_off() {
    let bounded = pool(2).await;
    let conn = bounded.get().await.unwrap();
    for text in ["SELECT $1::int8", "SELECT $1::int8 * 2", "SELECT $1::int8 * 3"] {
        conn.query(text, &[&1_i64]).await.unwrap();
        assert!(conn.statements().len() <= 2, "{} kept", conn.statements().len());
    }
    assert_eq!(conn.statements().len(), 1, "the third text emptied the full cache, then was kept");

    let off = pool(0).await;
    let conn = off.get().await.unwrap();
    for n in 0..2_i64 {
        assert_eq!(sum(conn.query(SUM, &[&n]).await.unwrap()), n + 1);
    }
    assert_eq!(conn.statements().len(), 0);
    // Each run's statement was closed once it was done with, as a plain client's is.
    assert_eq!(prepared(&conn, SUM).await, 0);
}

#[actix_rt::test]
async fn a_statement_the_schema_outgrew_fails_once_and_is_prepared_again() {
    let pool = pool(256).await;
    let conn = pool.get().await.unwrap();
    conn.batch_execute("CREATE TABLE t (a int8); INSERT INTO t VALUES (1)").await.unwrap();
    let all = "SELECT * FROM t";
    assert_eq!(conn.query(all, &[]).await.unwrap()[0].len(), 1);
    conn.batch_execute("ALTER TABLE t ADD COLUMN b int8 DEFAULT 2").await.unwrap();
    // The server refuses the kept plan, whose result had one column; the cache forgets it.
    let stale = conn.query(all, &[]).await.unwrap_err();
    assert_eq!(stale.code(), Some(&tokio_postgres::error::SqlState::FEATURE_NOT_SUPPORTED));
    assert_eq!(conn.statements().len(), 0);
    let row = &conn.query(all, &[]).await.unwrap()[0];
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (1, 2));
}
