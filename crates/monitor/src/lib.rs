//! The monitor: one small, single-threaded process per container, between the daemon and the
//! container. It creates the container with the runtime library (the daemon is
//! multithreaded and must never fork containers itself), holds its stdio, writes its
//! json-file log, serves attach, exec and resize over a unix socket, reaps it, records how it
//! ended in `exit.json`, and outlives daemon restarts (live restore).
//!
//! `proto` is the wire protocol (shared with the daemon's client), `logfile` the json-file
//! log format (the daemon reads it for `logs`), `server` the monitor itself. The binary is
//! `berth-monitor CONFIG` (built from the cli package); the daemon executes it from a sealed
//! copy so that no process inside a container can reach a writable runtime binary.

pub mod logfile;
pub mod proto;
mod server;

pub use server::main;
