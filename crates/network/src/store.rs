//! The network state store: networks, endpoints (the IPAM allocations) and published ports in
//! SQLite (WAL, `synchronous=NORMAL`), one transaction per change, so that a `kill -9` of the
//! daemon loses nothing acknowledged and a restart rebuilds bridges and rules from here.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};
use crate::ipnet::allocate;
use crate::types::{Endpoint, Network, PublishedPort};

/// The open database.
pub struct Store {
    db: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS networks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS endpoints (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    container TEXT NOT NULL,
    network TEXT NOT NULL,
    ip TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (container, network),
    UNIQUE (network, ip)
);
CREATE TABLE IF NOT EXISTS cursors (
    network TEXT PRIMARY KEY,
    last TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    container TEXT NOT NULL,
    data TEXT NOT NULL
);
";

impl Store {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let db = Connection::open(path)?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        db.execute_batch(SCHEMA)?;
        Ok(Store { db })
    }

    pub fn networks(&self) -> Result<Vec<Network>> {
        let mut st = self
            .db
            .prepare("SELECT data FROM networks ORDER BY rowid")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(serde_json::from_str(&r?)?);
        }
        Ok(out)
    }

    /// A network by exact name, exact id, or unique id prefix (as Docker resolves them).
    pub fn network(&self, key: &str) -> Result<Option<Network>> {
        let nets = self.networks()?;
        if let Some(n) = nets.iter().find(|n| n.name == key || n.id == key) {
            return Ok(Some(n.clone()));
        }
        let by_prefix: Vec<&Network> = nets
            .iter()
            .filter(|n| !key.is_empty() && n.id.starts_with(key))
            .collect();
        Ok(match by_prefix.as_slice() {
            [one] => Some((*one).clone()),
            _ => None,
        })
    }

    pub fn insert_network(&self, n: &Network) -> Result<()> {
        let data = serde_json::to_string(n)?;
        match self.db.execute(
            "INSERT INTO networks (id, name, data) VALUES (?1, ?2, ?3)",
            params![n.id, n.name, data],
        ) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(Error::NetworkExists(n.name.clone()))
            }
            r => r.map(|_| ()).map_err(Error::from),
        }
    }

    pub fn delete_network(&self, id: &str) -> Result<()> {
        self.db
            .execute("DELETE FROM networks WHERE id = ?1", params![id])?;
        self.db
            .execute("DELETE FROM cursors WHERE network = ?1", params![id])?;
        Ok(())
    }

    fn endpoints_where(&self, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Endpoint>> {
        let mut st = self.db.prepare(sql)?;
        let rows = st.query_map(args, |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for r in rows {
            let text: String = r?;
            out.push(serde_json::from_str(&text)?);
        }
        Ok(out)
    }

    /// Every endpoint, in attach order.
    pub fn endpoints(&self) -> Result<Vec<Endpoint>> {
        self.endpoints_where("SELECT data FROM endpoints ORDER BY seq", &[])
    }

    pub fn endpoints_of_network(&self, network_id: &str) -> Result<Vec<Endpoint>> {
        self.endpoints_where(
            "SELECT data FROM endpoints WHERE network = ?1 ORDER BY seq",
            &[&network_id],
        )
    }

    /// A container's endpoints, in attach order (the first is its primary network).
    pub fn endpoints_of_container(&self, container: &str) -> Result<Vec<Endpoint>> {
        self.endpoints_where(
            "SELECT data FROM endpoints WHERE container = ?1 ORDER BY seq",
            &[&container],
        )
    }

    /// Allocates an address on `network` (the requested one, or the next free after the last
    /// one picked) and records the endpoint `make(ip)` builds, in one transaction.
    pub fn allocate_endpoint(
        &mut self,
        network: &Network,
        container: &str,
        requested: Option<Ipv4Addr>,
        make: impl FnOnce(Ipv4Addr) -> Endpoint,
    ) -> Result<Endpoint> {
        let tx = self.db.transaction()?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT seq FROM endpoints WHERE container = ?1 AND network = ?2",
                params![container, network.id],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(Error::AlreadyConnected {
                container: container.to_string(),
                network: network.name.clone(),
            });
        }
        let used: HashSet<Ipv4Addr> = {
            let mut st = tx.prepare("SELECT ip FROM endpoints WHERE network = ?1")?;
            let rows = st.query_map(params![network.id], |r| r.get::<_, String>(0))?;
            let mut used = HashSet::new();
            for r in rows {
                if let Ok(ip) = r?.parse() {
                    used.insert(ip);
                }
            }
            used
        };
        let last: Option<Ipv4Addr> = tx
            .query_row(
                "SELECT last FROM cursors WHERE network = ?1",
                params![network.id],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .and_then(|s| s.parse().ok());
        let ip = allocate(
            &network.name,
            &network.subnet,
            network.ip_range.as_ref(),
            network.gateway,
            &used,
            requested,
            last,
        )?;
        if requested.is_none() {
            tx.execute(
                "INSERT INTO cursors (network, last) VALUES (?1, ?2)
                 ON CONFLICT (network) DO UPDATE SET last = excluded.last",
                params![network.id, ip.to_string()],
            )?;
        }
        let ep = make(ip);
        tx.execute(
            "INSERT INTO endpoints (container, network, ip, data) VALUES (?1, ?2, ?3, ?4)",
            params![
                container,
                network.id,
                ip.to_string(),
                serde_json::to_string(&ep)?
            ],
        )?;
        tx.commit()?;
        Ok(ep)
    }

    /// Rewrites an endpoint's record (same container, network and address).
    pub fn update_endpoint(&self, ep: &Endpoint) -> Result<()> {
        self.db.execute(
            "UPDATE endpoints SET data = ?3 WHERE container = ?1 AND network = ?2",
            params![ep.container_id, ep.network_id, serde_json::to_string(ep)?],
        )?;
        Ok(())
    }

    pub fn delete_endpoint(&self, container: &str, network_id: &str) -> Result<()> {
        self.db.execute(
            "DELETE FROM endpoints WHERE container = ?1 AND network = ?2",
            params![container, network_id],
        )?;
        Ok(())
    }

    /// Every published port, in publish order.
    pub fn ports(&self) -> Result<Vec<PublishedPort>> {
        let mut st = self.db.prepare("SELECT data FROM ports ORDER BY seq")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(serde_json::from_str(&r?)?);
        }
        Ok(out)
    }

    /// Records several ports in one transaction.
    pub fn insert_ports(&mut self, ports: &[PublishedPort]) -> Result<()> {
        let tx = self.db.transaction()?;
        for p in ports {
            tx.execute(
                "INSERT INTO ports (container, data) VALUES (?1, ?2)",
                params![p.container_id, serde_json::to_string(p)?],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets a container's ports; returns how many there were.
    pub fn delete_ports(&self, container: &str) -> Result<usize> {
        Ok(self
            .db
            .execute("DELETE FROM ports WHERE container = ?1", params![container])?)
    }
}
