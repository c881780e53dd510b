#!/usr/bin/env bash
# Runs every cargo-fuzz target briefly from its seed corpus: SECONDS each, by default
# max(3, 60 / number of targets), so the whole is about a minute of fuzzing. All targets
# are built first, in one `cargo fuzz build`. A crash fails the run and leaves its input in
# fuzz/artifacts/<target>/ (make it a regression test in the crate). Needs the nightly
# toolchain and cargo-fuzz (installed if missing); without them the run is skipped, or
# fails when CI=true.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

missing() {
  if [ "${CI:-}" = true ]; then
    echo "fuzz: $1: failing (CI=true)" >&2
    exit 1
  fi
  echo "fuzz: $1: targets not run"
  exit 0
}

cargo +nightly --version >/dev/null 2>&1 || missing "no nightly toolchain here"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz || missing "cargo-fuzz is not installed and could not be"
fi

targets=$(cargo +nightly fuzz list)
n=$(echo "$targets" | wc -w)
secs=${1:-$(( 60 / n > 3 ? 60 / n : 3 ))}
cargo +nightly fuzz build

start=$(date +%s)
for t in $targets; do
  mkdir -p "corpus/$t"
  # A scratch copy of the seeds, so the grown corpus stays out of the tree.
  work=$(mktemp -d)
  cp -r "corpus/$t/." "$work/"
  echo "fuzz: $t for ${secs}s"
  if ! cargo +nightly fuzz run "$t" "$work" -- -max_total_time="$secs" -timeout=10 \
      -rss_limit_mb=2048 >"$work.log" 2>&1; then
    tail -40 "$work.log"
    rm -rf "$work" "$work.log"
    echo "fuzz: $t failed: its input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
  tail -1 "$work.log"
  rm -rf "$work" "$work.log"
done
echo "fuzz: $n targets, $(( $(date +%s) - start ))s"
