#!/usr/bin/env bash
# Builds, side by side on the same base image: berth's builder, dockerd's classic builder
# (DOCKER_BUILDKIT=0) and buildah (`buildah bud --layers`, Debian's), medians and ratios:
#   1. ten RUN steps without cache (--no-cache), then the same fully cached
#   2. COPY of 100 files, without cache
#   3. a 50 MB context with one file changed between builds: only the steps after its COPY
#      run again
# RUN steps have no network (--network none) everywhere, so no engine pays for a bridge.
# Every daemon and store is private to this run and removed at the end.
#   bench/build.sh [RUNS]     (as root; build first: cargo build --release -p berth-cli)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
bin="$PWD/target/release"
[ -x "$bin/berth" ] && [ -x "$bin/berthd" ] || { echo "build first: cargo build --release -p berth-cli -p berth-runtime-cli"; exit 1; }
image=../shared/fixtures/images/busybox.docker.tar
[ -f "$image" ] || { echo "needs $image"; exit 1; }
command -v buildah >/dev/null || { apt-get install -y -qq buildah >/dev/null 2>&1 || true; }
export BERTH_NO_AUTOSTART=1 DOCKER_BUILDKIT=0

work=$(mktemp -d /tmp/berth-bench-build.XXXXXX)
tag=$$
mkdir -p "$work/run"
mount -t tmpfs -o mode=0755 bench-run "$work/run"
bsock="$work/run/berth/berth.sock"
dsock="$work/docker.sock"
cg_b="berth-bench-$tag"
cg_d="docker-bench-$tag"
B=("$bin/berth" -H "unix://$bsock")
D=(docker -H "unix://$dsock")
H=()

cleanup() {
  set +e
  [ -S "$bsock" ] && "${B[@]}" ps -aq | xargs -r "${B[@]}" rm -f >/dev/null 2>&1
  [ -S "$dsock" ] && "${D[@]}" ps -aq | xargs -r "${D[@]}" rm -f >/dev/null 2>&1
  [ -n "${bpid:-}" ] && kill "$bpid" 2>/dev/null && wait "$bpid" 2>/dev/null
  [ -n "${dpid:-}" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
  [ ${#H[@]} -gt 0 ] && "${H[@]}" rm -a >/dev/null 2>&1 && "${H[@]}" rmi -af >/dev/null 2>&1
  ip link delete "bb${tag}" 2>/dev/null
  nft delete table ip "berth_bench_$tag" 2>/dev/null
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
  for d in /sys/fs/cgroup/{,*/}{$cg_b,$cg_d}; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
stamp() { printf -v "$1" '%s' "${EPOCHREALTIME/./}"; }

echo "kernel $(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $runs runs each"

"$bin/berth" daemon --root "$work/berth/root" --state "$work/run/berth" \
  --cgroup-parent "$cg_b" --bridge "bb${tag}" --nft-table "berth_bench_$tag" --link-prefix "bz" \
  >"$work/berth.log" 2>&1 &
bpid=$!
dockerd --data-root "$work/docker/root" --exec-root "$work/run/docker" -H "unix://$dsock" \
  --pidfile "$work/docker.pid" --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
  --cgroup-parent="/$cg_d" >"$work/docker.log" 2>&1 &
dpid=$!
for _ in $(seq 300); do [ -S "$bsock" ] && [ -S "$dsock" ] && "${D[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
"${B[@]}" load -q -i "$image" >/dev/null
"${D[@]}" load -q -i "$image" >/dev/null
peers=(berth docker)
if command -v buildah >/dev/null; then
  H=(buildah --root "$work/buildah/root" --runroot "$work/run/buildah" --storage-driver overlay)
  if "${H[@]}" pull -q "docker-archive:$PWD/$image" >/dev/null 2>"$work/buildah.err" \
    && "${H[@]}" tag "$("${H[@]}" images -q | head -1)" busybox:latest 2>>"$work/buildah.err"; then
    peers+=(buildah)
  else
    echo "leaving out buildah: $(tail -1 "$work/buildah.err")"
    H=()
  fi
fi

build() {
  local p=$1 dir=$2; shift 2
  case $p in
    berth) "${B[@]}" build -q --network none -t bench:1 "$@" "$dir" ;;
    docker) "${D[@]}" build -q --network none -t bench:1 "$@" "$dir" ;;
    buildah) "${H[@]}" bud -q --layers --network none -t bench:1 "$@" "$dir" ;;
  esac >/dev/null 2>"$work/err.$p" || { echo "$p build failed: $(grep -v DEPRECATED "$work/err.$p" | tail -3)"; exit 1; }
}

declare -A med
# time NAME DIR [FLAGS]: the median of $runs builds per engine, interleaved; `prepare` (if
# set) runs untimed before each build.
time_builds() {
  local name=$1 dir=$2; shift 2
  for p in "${peers[@]}"; do : >"$work/t.$p"; build "$p" "$dir" "$@"; done
  for _ in $(seq "$runs"); do
    for p in "${peers[@]}"; do
      [ -n "${prepare:-}" ] && $prepare
      stamp t0; build "$p" "$dir" "$@"; stamp t1
      echo $((t1 - t0)) >>"$work/t.$p"
    done
  done
  echo "== $name (median of $runs)"
  for p in "${peers[@]}"; do med[$p]=$(median <"$work/t.$p"); done
  for p in "${peers[@]}"; do
    awk -v p="$p" -v t="${med[$p]}" -v b="${med[berth]}" 'BEGIN {printf "  %-8s %9.1f ms   %6.1fx berth\n", p, t/1000, t/b}'
  done
}

# --- 1. ten RUN steps ---------------------------------------------------------------------
mkdir -p "$work/runs"
{ echo "FROM busybox"; for i in $(seq 10); do echo "RUN echo step $i > /step$i"; done; } >"$work/runs/Dockerfile"
time_builds "10 RUN steps, --no-cache" "$work/runs" --no-cache
time_builds "10 RUN steps, fully cached" "$work/runs"

# --- 2. 100 files ------------------------------------------------------------------------------
mkdir -p "$work/files/src"
for i in $(seq 100); do head -c 4096 /dev/urandom >"$work/files/src/f$i"; done
printf 'FROM busybox\nCOPY src/ /src/\n' >"$work/files/Dockerfile"
time_builds "COPY of 100 files, --no-cache" "$work/files" --no-cache

# --- 3. a 50 MB context, one file changed ----------------------------------------------------
mkdir -p "$work/big/data"
for i in $(seq 50); do head -c 1048576 /dev/urandom >"$work/big/data/blob$i"; done
echo 0 >"$work/big/changing"
printf 'FROM busybox\nCOPY data/ /data/\nRUN ls /data | wc -l > /count\nCOPY changing /changing\nRUN cat /changing > /copy\n' >"$work/big/Dockerfile"
change() { date +%s%N >"$work/big/changing"; }
prepare=change time_builds "50 MB context, one file changed (2 of 5 steps run)" "$work/big"

echo
echo "berth $(git rev-parse --short HEAD 2>/dev/null), docker $("${D[@]}" version --format '{{.Server.Version}}' 2>/dev/null), buildah $(buildah --version 2>/dev/null | awk '{print $3}')"
