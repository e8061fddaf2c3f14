//! Pooled connections that keep the statements they prepared.
//!
//! `query("…")` on a plain client prepares the text on every call: one round trip for the server
//! to parse, analyse and describe it, then the one that runs it. A [`PgConnection`] prepares
//! each text once, under a name, and afterwards runs it by name: one round trip, and nothing
//! parsed again on the server. [`PgTransaction`] does the same inside a transaction. The rest of
//! the client and of the transaction is reached through `Deref`.

use std::{
    collections::HashMap,
    ops::{Deref, DerefMut},
};

use parking_lot::Mutex;
use tokio_postgres::{error::SqlState, types::ToSql, Client, Error, GenericClient, NoTls, Row, Statement, Transaction};

/// Statement parameters, as the client takes them.
pub type Params<'p> = [&'p (dyn ToSql + Sync)];

/// The statements one connection prepared, by text; at most `capacity`, and all forgotten when
/// one more is needed (a service runs a fixed set of texts, so the cache fills once).
pub struct Statements {
    capacity: usize,
    by_text: Mutex<HashMap<Box<str>, Statement>>,
}

impl Statements {
    fn new(capacity: usize) -> Self {
        Self { capacity, by_text: Mutex::new(HashMap::new()) }
    }

    /// The statement of `sql`, prepared on `client` the first time it is asked for. With a
    /// capacity of 0 it is prepared every time, as a plain client does.
    async fn get<C: GenericClient + Sync>(&self, client: &C, sql: &str) -> Result<Statement, Error> {
        if let Some(statement) = self.by_text.lock().get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(sql).await?;
        if self.capacity > 0 {
            let mut by_text = self.by_text.lock();
            if by_text.len() >= self.capacity {
                by_text.clear();
            }
            by_text.insert(sql.into(), statement.clone());
        }
        Ok(statement)
    }

    /// Forget every statement when `error` says a kept one no longer fits the schema (a migration
    /// changed the columns a statement returns: "cached plan must not change result type"), so
    /// that each is prepared again on its next use; the statement that failed is not retried.
    fn after(&self, error: &Error) {
        if error.code() == Some(&SqlState::FEATURE_NOT_SUPPORTED) {
            self.by_text.lock().clear();
        }
    }

    /// How many are kept.
    pub fn len(&self) -> usize {
        self.by_text.lock().len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `query`, `query_one`, `query_opt` and `execute` taking the statement's text, run on the field
/// `$on` with the statement prepared once through `self.statements`.
macro_rules! by_text {
    ($on:ident) => {
        /// Run `sql` (prepared once on the connection) and return its rows.
        pub async fn query(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, Error> {
            let statement = self.statements.get(&self.$on, sql).await?;
            self.$on.query(&statement, params).await.inspect_err(|e| self.statements.after(e))
        }

        /// Run `sql` and return its one row, or fail.
        pub async fn query_one(&self, sql: &str, params: &Params<'_>) -> Result<Row, Error> {
            let statement = self.statements.get(&self.$on, sql).await?;
            self.$on.query_one(&statement, params).await.inspect_err(|e| self.statements.after(e))
        }

        /// Run `sql` and return its row, if any.
        pub async fn query_opt(&self, sql: &str, params: &Params<'_>) -> Result<Option<Row>, Error> {
            let statement = self.statements.get(&self.$on, sql).await?;
            self.$on.query_opt(&statement, params).await.inspect_err(|e| self.statements.after(e))
        }

        /// Run `sql` and return the number of rows it changed.
        pub async fn execute(&self, sql: &str, params: &Params<'_>) -> Result<u64, Error> {
            let statement = self.statements.get(&self.$on, sql).await?;
            self.$on.execute(&statement, params).await.inspect_err(|e| self.statements.after(e))
        }
    };
}

/// One PostgreSQL connection of the pool, with the statements it prepared.
pub struct PgConnection {
    client: Client,
    statements: Statements,
}

impl PgConnection {
    /// `client`, keeping at most `capacity` prepared statements.
    pub fn new(client: Client, capacity: usize) -> Self {
        Self { client, statements: Statements::new(capacity) }
    }

    /// The statements it keeps.
    pub fn statements(&self) -> &Statements {
        &self.statements
    }

    by_text!(client);

    /// Begin a transaction that runs its statements prepared on this connection.
    pub async fn transaction(&mut self) -> Result<PgTransaction<'_>, Error> {
        let tx = self.client.transaction().await?;
        Ok(PgTransaction { tx, statements: &self.statements })
    }
}

impl Deref for PgConnection {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for PgConnection {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// A transaction on a [`PgConnection`]; rolled back if dropped without a commit.
pub struct PgTransaction<'a> {
    tx: Transaction<'a>,
    statements: &'a Statements,
}

impl PgTransaction<'_> {
    by_text!(tx);

    /// Commit.
    pub async fn commit(self) -> Result<(), Error> {
        self.tx.commit().await
    }

    /// Roll back.
    pub async fn rollback(self) -> Result<(), Error> {
        self.tx.rollback().await
    }
}

impl<'a> Deref for PgTransaction<'a> {
    type Target = Transaction<'a>;

    fn deref(&self) -> &Transaction<'a> {
        &self.tx
    }
}

/// Opens the pool's connections, each keeping up to `statements` prepared statements.
pub struct Manager {
    config: tokio_postgres::Config,
    statements: usize,
}

impl Manager {
    /// Connections to `config`.
    pub fn new(config: tokio_postgres::Config, statements: usize) -> Self {
        Self { config, statements }
    }
}

impl bb8::ManageConnection for Manager {
    type Connection = PgConnection;
    type Error = Error;

    async fn connect(&self) -> Result<PgConnection, Error> {
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "PostgreSQL connection closed");
            }
        });
        Ok(PgConnection::new(client, self.statements))
    }

    /// Checked on every checkout without a round trip: a connection the server closed (a restart,
    /// `pg_terminate_backend`, an idle timeout) has ended its connection task, which marks the
    /// client closed, and is replaced here. Asking the server instead (an empty query) would add
    /// a round trip to every statement sent on a fresh checkout.
    async fn is_valid(&self, conn: &mut PgConnection) -> Result<(), Error> {
        if conn.client.is_closed() {
            // Fails at once, with the client's own "connection closed" error.
            return conn.client.simple_query("").await.map(|_| ());
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        conn.client.is_closed()
    }
}
