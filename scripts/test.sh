#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, then format, lints and every
# test (unit, privileged, end-to-end) with nextest, a process per test, in parallel.
# Run as root on a Debian machine; privileged tests skip with a message otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
scripts/install-deps.sh test

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo nextest run --workspace --locked --no-fail-fast "$@"
# The berth CLI's end-to-end tests ran against a private dockerd above (the reference);
# again against berth's own daemon, which must behave the same.
BERTH_TEST_DAEMON=berth cargo nextest run -p berth-cli --test e2e --test build --locked --no-fail-fast "$@"
# Every fuzz target briefly: about a minute in all (fails under CI=true without nightly).
scripts/fuzz.sh
