#!/usr/bin/env bash
# Image load + unpack benchmark: berth (overlay and vfs) against skopeo copy to a dir, a plain
# `tar -x` of the archive and its layers (the floor: the same files created, no store), and
# `docker load` (a private dockerd is started when none answers); then `docker diff`/`docker commit` times of a
# small change on a small image and on the large one (they should be alike: they cost what
# the change costs, not what the image holds).
#
# The large image (debootstrap minbase + 40 MB of random files + 5000 small files) is built
# once by bench/make-large-image.sh and cached in /var/tmp/berth-bench.
#
# berth's time includes making the result durable (one syncfs per layer); skopeo and docker
# do not sync, the tar reference ends with `sync` to show that floor.
#
# Every run unpacks into a fresh directory and nothing is deleted until the end: ext4 makes
# inode allocation slow for a while in block groups with recently deleted inodes, which would
# otherwise measure the benchmark's own cleanup.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CACHE=${BERTH_BENCH_CACHE:-/var/tmp/berth-bench}
RUNS_N=${RUNS:-5}
export BERTH_BENCH_CACHE=$CACHE
bench/make-large-image.sh >/dev/null
if [ -z "${BERTH_BENCH_BIN:-}" ]; then
    cargo build --release -q -p berth-image --examples
fi
B=${BERTH_BENCH_BIN:-$REPO/target/release/examples}
W=$CACHE/runs
rm -rf "$W"
mkdir -p "$W"
sleep "${SETTLE:-30}" # let the deletions above age out of ext4's "recently deleted" window
BUSYBOX=${BUSYBOX_FIXTURE:-$REPO/../shared/fixtures/images/busybox.docker.tar}
[ -e "$BUSYBOX" ] || BUSYBOX=/work/shared/fixtures/images/busybox.docker.tar

docker_ok=false
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then docker_ok=true; fi
DOCKER_DIR=$CACHE/dockerd
stop_docker() {
    if [ -s "$DOCKER_DIR/d.pid" ]; then
        pid=$(cat "$DOCKER_DIR/d.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$DOCKER_DIR"
}
if ! $docker_ok && command -v docker >/dev/null && command -v dockerd >/dev/null; then
    # No daemon answers: start a private one for the comparison, stopped at the end.
    rm -rf "$DOCKER_DIR" && mkdir -p "$DOCKER_DIR"
    dockerd --data-root "$DOCKER_DIR/data" --exec-root "$DOCKER_DIR/exec" --pidfile "$DOCKER_DIR/d.pid" \
        -H "unix://$DOCKER_DIR/d.sock" --bridge=none --iptables=false --ip6tables=false \
        --ip-masq=false >"$DOCKER_DIR/log" 2>&1 &
    export DOCKER_HOST=unix://$DOCKER_DIR/d.sock
    trap stop_docker EXIT
    for _ in $(seq 300); do
        if docker info >/dev/null 2>&1; then docker_ok=true; break; fi
        sleep 0.1
    done
fi

run_group() { # name archive(docker|oci)
    local name=$1 kind=$2 archive skopeo_src
    if [ "$kind" = docker ]; then
        archive=$CACHE/large.docker.tar; skopeo_src=docker-archive:$archive
    else
        archive=$CACHE/large.oci.tar; skopeo_src=oci-archive:$archive:bench/large:1
    fi
    local cmds=(
        -n "berth load (overlay)" "$B/load \$(mktemp -d -p $W) overlay $archive"
        -n "berth load (vfs)" "$B/load \$(mktemp -d -p $W) vfs $archive"
    )
    if command -v skopeo >/dev/null; then
        cmds+=(-n "skopeo copy to dir" "skopeo copy -q $skopeo_src dir:\$(mktemp -d -u -p $W)")
    fi
    if [ "$kind" = docker ]; then
        cmds+=(-n "tar -x archive + layers + sync" "d=\$(mktemp -d -p $W) && tar -C \$d -xf $archive && mkdir \$d/root && for l in \$d/l*/layer.tar; do tar -C \$d/root --numeric-owner -xf \$l; done && sync")
        if $docker_ok; then
            cmds+=(-n "docker load" "docker load -q -i $archive")
        fi
    fi
    # `sync` before each run: nobody pays for the previous command's dirty pages (berth's
    # syncfs would otherwise flush them).
    # (docker's copy of the image is removed before every run, or it would load nothing)
    local prep="sync"
    if [ "$kind" = docker ] && $docker_ok; then prep="docker rmi -f bench/large:1 >/dev/null 2>&1; sync"; fi
    hyperfine --style basic --prepare "$prep" --warmup 1 --runs "$RUNS_N" \
        --export-json "$CACHE/$name.json" "${cmds[@]}" >&2
    python3 - "$CACHE/$name.json" "$name" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
base = next(r for r in res if r["command"] == "berth load (overlay)")["median"]
print(f"\n## {sys.argv[2]}: median of {len(res[0]['times'])} runs")
print(f"{'command':32} {'median':>9} {'vs berth overlay':>17}")
for r in res:
    print(f"{r['command']:32} {r['median']:8.3f}s {r['median']/base:16.2f}x")
PY
}

echo "# berth image load benchmark ($(uname -r), $(nproc) cores)"
echo "large image: $(du -h "$CACHE/large.docker.tar" | cut -f1) docker-archive (plain layers), $(du -h "$CACHE/large.oci.tar" 2>/dev/null | cut -f1) OCI archive (gzip layers)"
run_group load-docker-archive docker
if [ -e "$CACHE/large.oci.tar" ]; then
    sleep "${SETTLE:-30}" # docker's deletions above slow ext4's inode allocation for a while
    run_group load-oci-gzip oci
fi

echo
echo "## commit and diff of a small change (1 file added, 1 deleted), median of 7"
for d in overlay vfs; do
    for img in busybox large; do
        root=$(mktemp -d -p "$W")
        if [ $img = busybox ]; then
            "$B/load" "$root" $d "$BUSYBOX" 2>/dev/null; ref=busybox:latest
        else
            "$B/load" "$root" $d "$CACHE/large.docker.tar" 2>/dev/null; ref=bench/large:1
        fi
        "$B/commit_bench" "$root" $d $ref 7
    done
done > "$CACHE/commit.jsonl"
python3 - "$CACHE/commit.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print(f"{'driver':8} {'image':16} {'diff':>9} {'commit':>9}")
for r in rows:
    print(f"{r['driver']:8} {r['image']:16} {r['diff_ms']:7.2f}ms {r['commit_ms']:7.2f}ms")
PY
rm -rf "$W"
