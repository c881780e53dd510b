//! The metadata database: SQLite in WAL mode with `synchronous=NORMAL`, one transaction per
//! change, so a `kill -9` at any point leaves a consistent store.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, Transaction};

/// Errors of the metadata database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("metadata database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("metadata database")]
    Sql(#[from] rusqlite::Error),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS snapshots (
    key TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    parent TEXT,
    kind INTEGER NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent);
CREATE TABLE IF NOT EXISTS layers (
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    parent TEXT,
    size INTEGER NOT NULL,
    tar_size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    created TEXT,
    added INTEGER NOT NULL,
    parent TEXT,
    manifest_digest TEXT,
    manifest_media_type TEXT,
    top_chain TEXT
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    diff_id TEXT NOT NULL,
    chain_id TEXT NOT NULL,
    blob_digest TEXT,
    blob_media_type TEXT,
    blob_size INTEGER,
    PRIMARY KEY (image_id, idx)
);
CREATE INDEX IF NOT EXISTS image_layers_chain ON image_layers(chain_id);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tags_image ON tags(image_id);
CREATE TABLE IF NOT EXISTS build_cache (
    key TEXT PRIMARY KEY,
    image_id TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS build_cache_image ON build_cache(image_id);
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    image_id TEXT NOT NULL,
    created INTEGER NOT NULL
);
";

/// A shared connection (one writer at a time; WAL keeps readers of other processes going).
#[derive(Debug)]
pub struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens (creating) the database at `path` and its schema.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let open = |source| DbError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(open)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(open)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open)?;
        conn.execute_batch(SCHEMA).map_err(open)?;
        Ok(Db {
            conn: Mutex::new(conn),
        })
    }

    /// The connection, for reads (a poisoned lock is recovered: SQLite kept it consistent).
    pub fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one transaction, committed when it returns Ok.
    pub fn tx<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut c = self.conn();
        let tx = c.transaction().map_err(|e| E::from(DbError::Sql(e)))?;
        let v = f(&tx)?;
        tx.commit().map_err(|e| E::from(DbError::Sql(e)))?;
        Ok(v)
    }
}
