//! The engine's metadata: containers and volumes in SQLite (WAL, synchronous=NORMAL), one
//! row of JSON each, one transaction per change, so a `kill -9` of the daemon loses nothing
//! it acknowledged. Images have their own store (`berth-image`).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

pub struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS containers (
                 id TEXT PRIMARY KEY,
                 name TEXT NOT NULL UNIQUE,
                 record TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS volumes (
                 name TEXT PRIMARY KEY,
                 record TEXT NOT NULL
             );",
        )?;
        Ok(Db {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls back.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn put_container(&self, id: &str, name: &str, record: &impl Serialize) -> Result<()> {
        let json =
            serde_json::to_string(record).map_err(|e| Error::internal("encode container", e))?;
        let c = self.conn();
        c.execute(
            "INSERT INTO containers (id, name, record) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET name = excluded.name, record = excluded.record",
            params![id, name, json],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Error::Conflict(format!("the container name {name:?} is already in use"))
            }
            e => e.into(),
        })?;
        Ok(())
    }

    pub fn delete_container(&self, id: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM containers WHERE id = ?1", params![id])?;
        Ok(())
    }

    pub fn containers<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT id, record FROM containers")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row?;
            match serde_json::from_str(&json) {
                Ok(v) => out.push(v),
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "unreadable container record skipped")
                }
            }
        }
        Ok(out)
    }

    pub fn put_volume(&self, name: &str, record: &impl Serialize) -> Result<()> {
        let json =
            serde_json::to_string(record).map_err(|e| Error::internal("encode volume", e))?;
        self.conn().execute(
            "INSERT INTO volumes (name, record) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET record = excluded.record",
            params![name, json],
        )?;
        Ok(())
    }

    pub fn get_volume<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let c = self.conn();
        let json: Option<String> = c
            .query_row(
                "SELECT record FROM volumes WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| Error::internal("decode volume", e)))
            .transpose()
    }

    pub fn delete_volume(&self, name: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM volumes WHERE name = ?1", params![name])?;
        Ok(())
    }

    pub fn volumes<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT record FROM volumes ORDER BY name")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            if let Ok(v) = serde_json::from_str(&row?) {
                out.push(v);
            }
        }
        Ok(out)
    }
}
