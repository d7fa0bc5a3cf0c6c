//! Storage: one [`Store`] over SQLite (default, a file in the data dir, WAL)
//! or PostgreSQL (given a URL). Both run the same SQL: queries use `$n`
//! placeholders, which SQLite accepts too, and only portable types (BIGINT
//! times in ms, DOUBLE PRECISION, TEXT JSON, BLOB/BYTEA). Where the dialects
//! differ the code says so.
//!
//! SQLite allows one writer at a time, so its writes go through a pool of one
//! connection (no SQLITE_BUSY between our own writers) and reads through a
//! separate pool; PostgreSQL uses one pool for both.
//!
//! Submodules own one table family each.

pub mod auth;
pub mod bgp;
pub mod commands;
pub mod events;
pub mod incidents;
pub mod jobs;
pub mod metrics;
pub mod nodes;
pub mod pcaps;
pub mod policies;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Runs `$body` with `$p` bound to the concrete pool of `$pool` (a [`Pool`]).
/// The body is compiled once per backend, so the same query code serves both.
macro_rules! on {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::store::Pool::Sqlite($p) => $body,
            $crate::store::Pool::Pg($p) => $body,
        }
    };
}
pub(crate) use on;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error while {what}: {source}")]
    Db {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("database migration failed: {0} (is the database from a newer Levee?)")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot open database {target}: {source}")]
    Open {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// A deadlock or serialization failure (PostgreSQL 40P01 / 40001): the
    /// same transaction may succeed when run again.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Db {
                source: sqlx::Error::Database(d),
                ..
            } => matches!(d.code().as_deref(), Some("40P01") | Some("40001")),
            _ => false,
        }
    }
}

/// Adds what we were doing to a sqlx error.
pub(crate) trait Ctx<T> {
    fn ctx(self, what: &'static str) -> Result<T, StoreError>;
}

impl<T> Ctx<T> for Result<T, sqlx::Error> {
    fn ctx(self, what: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Db { what, source })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Pool {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

/// The database. Cheap to clone (pools are shared).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) read: Pool,
    pub(crate) write: Pool,
    /// SQLite: the connection that checkpoints the WAL, so that the writer
    /// never waits for the checkpoint's fsync.
    checkpointer: Option<SqlitePool>,
    backend: Backend,
}

/// The migrations, embedded per dialect (version, description, SQL).
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "command results",
        include_str!("../../migrations/sqlite/0002_command_results.sql"),
    ),
    (
        3,
        "bgp",
        include_str!("../../migrations/sqlite/0003_bgp.sql"),
    ),
];
const PG_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "command results",
        include_str!("../../migrations/postgres/0002_command_results.sql"),
    ),
    (
        3,
        "bgp",
        include_str!("../../migrations/postgres/0003_bgp.sql"),
    ),
];

fn migrator(list: &[(i64, &'static str, &'static str)]) -> Migrator {
    let migrations = list
        .iter()
        .map(|(v, d, sql)| {
            Migration::new(
                *v,
                Cow::Borrowed(*d),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

impl Store {
    /// Opens SQLite at `path` (created if missing; WAL journal).
    pub async fn open_sqlite(path: &Path, readers: u32) -> Result<Store, StoreError> {
        let target = path.display().to_string();
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a power cut may lose the last transactions, never corrupts.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory");
        Self::open_sqlite_with(opts, readers, target).await
    }

    /// Opens SQLite from a `sqlite:` URL.
    pub async fn open_sqlite_url(url: &str, readers: u32) -> Result<Store, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|source| StoreError::Open {
                target: url.to_string(),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        Self::open_sqlite_with(opts, readers, url.to_string()).await
    }

    async fn open_sqlite_with(
        opts: SqliteConnectOptions,
        readers: u32,
        target: String,
    ) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            target: target.clone(),
            source,
        };
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // Checkpoints are the checkpointer's job (see `checkpoint`).
            .connect_with(opts.clone().pragma("wal_autocheckpoint", "0"))
            .await
            .map_err(open_err)?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await
            .map_err(open_err)?;
        let read = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .connect_with(opts.read_only(true))
            .await
            .map_err(open_err)?;
        let store = Store {
            read: Pool::Sqlite(read),
            write: Pool::Sqlite(write),
            checkpointer: Some(checkpointer),
            backend: Backend::Sqlite,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Opens PostgreSQL at `url` and migrates (migrations take an advisory
    /// lock, so replicas starting together migrate once).
    pub async fn open_postgres(url: &str, connections: u32) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            target: redact(url),
            source,
        };
        let opts = PgConnectOptions::from_str(url).map_err(open_err)?;
        let pool = PgPoolOptions::new()
            .max_connections(connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await
            .map_err(open_err)?;
        let store = Store {
            read: Pool::Pg(pool.clone()),
            write: Pool::Pg(pool),
            checkpointer: None,
            backend: Backend::Postgres,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match &self.write {
            Pool::Sqlite(p) => migrator(SQLITE_MIGRATIONS).run(p).await?,
            Pool::Pg(p) => migrator(PG_MIGRATIONS).run(p).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The PostgreSQL pool, for leader election (advisory locks).
    pub fn pg_pool(&self) -> Option<&PgPool> {
        match &self.write {
            Pool::Pg(p) => Some(p),
            Pool::Sqlite(_) => None,
        }
    }

    /// Closes every connection (SQLite checkpoints its WAL).
    pub async fn close(&self) {
        for pool in [&self.read, &self.write] {
            on!(pool, p => p.close().await);
        }
        if let Some(c) = &self.checkpointer {
            c.close().await;
        }
    }

    /// SQLite: copies committed WAL pages into the database file (PASSIVE:
    /// never blocks the writer; the fsync happens on this connection, not
    /// the writer's). Returns the WAL frames still not checkpointed.
    /// PostgreSQL checkpoints by itself: `Ok(0)`.
    pub async fn checkpoint(&self) -> Result<i64, StoreError> {
        let Some(c) = &self.checkpointer else {
            return Ok(0);
        };
        let (_busy, log, done): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(c)
            .await
            .ctx("checkpointing the WAL")?;
        Ok((log - done).max(0))
    }

    /// Liveness of the database, for `/healthz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on!(&self.read, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ())).ctx("pinging")
    }
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
