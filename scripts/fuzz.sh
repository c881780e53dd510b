#!/usr/bin/env bash
# Runs every cargo-fuzz target briefly (SECONDS each, 20 by default) from its seed corpus;
# a crash fails the run and leaves its input in fuzz/artifacts/<target>/ (make it a
# regression test). Needs the nightly toolchain; installs cargo-fuzz if missing.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-20}
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain here: targets not run"
  exit 0
fi
cargo fuzz --version >/dev/null 2>&1 || cargo install --locked cargo-fuzz
for t in $(cargo +nightly fuzz list); do
  mkdir -p "corpus/$t"
  # A scratch copy of the seeds, so the grown corpus stays out of the tree.
  work=$(mktemp -d)
  cp -r "corpus/$t/." "$work/"
  echo "fuzz: $t for ${secs}s"
  cargo +nightly fuzz run "$t" "$work" -- -max_total_time="$secs" -timeout=10 2>&1 | tail -3
  rm -rf "$work"
done
