//! `berth-monitor`: the per-container monitor the daemon starts (see `crates/monitor`).

fn main() -> std::process::ExitCode {
    berth_monitor::main()
}
