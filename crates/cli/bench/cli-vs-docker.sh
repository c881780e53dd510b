#!/usr/bin/env bash
# The berth CLI's own overhead against Docker's CLI: both drive the same daemon, so the
# difference between them is the clients'. Runs interleaved (berth, docker, berth, …) so that
# load changes on the machine hit both alike; prints medians and the ratio, then hyperfine's
# view of the same commands when hyperfine is installed.
#
#   crates/cli/bench/cli-vs-docker.sh unix:///path/to/daemon.sock [runs] [berth binary]
#
# The daemon needs the busybox image (berth load -i shared/fixtures/images/busybox.docker.tar).
set -euo pipefail
host=${1:?usage: $0 unix:///path/to/daemon.sock [runs] [berth binary]}
runs=${2:-30}
berth=${3:-$(dirname "$0")/../../../target/release/berth}
export BERTH_NO_AUTOSTART=1

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

bench() {
    local name=$1; shift
    local b d
    b=$(mktemp) d=$(mktemp)
    # Warm up both.
    for _ in 1 2 3; do "$berth" -H "$host" "$@" >/dev/null; docker -H "$host" "$@" >/dev/null; done
    for _ in $(seq "$runs"); do
        t0=$(date +%s%N); "$berth" -H "$host" "$@" >/dev/null; t1=$(date +%s%N)
        docker -H "$host" "$@" >/dev/null; t2=$(date +%s%N)
        echo $(( (t1 - t0) / 1000 )) >>"$b"
        echo $(( (t2 - t1) / 1000 )) >>"$d"
    done
    local mb md
    mb=$(median <"$b"); md=$(median <"$d")
    awk -v n="$name" -v b="$mb" -v d="$md" 'BEGIN {printf "%-28s berth %8.1f ms   docker %8.1f ms   docker/berth %.2f\n", n, b/1000, d/1000, d/b}'
    rm -f "$b" "$d"
}

bench "run --rm busybox true" run --rm --network none busybox true
bench "ps -a" ps -a
bench "version" version
bench "inspect busybox" image inspect busybox

if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 3 --runs "$runs" \
        "$berth -H $host run --rm --network none busybox true" \
        "docker -H $host run --rm --network none busybox true"
fi
