#!/usr/bin/env bash
# Pull and push of a large multi-layer image through a local registry (Debian's
# docker-registry on 127.0.0.1), berth against its peers, side by side with hyperfine:
#   pull: berth (examples/regctl, a fresh image store each run), docker pull (a private
#         dockerd with its own dirs and socket, the image removed before each run), podman
#         pull (its own root), and skopeo copy to a directory: the transfer-only floor.
#   push: berth push of the image as `docker load` would have it (plain layers: compressed
#         during the push; a fresh store loaded before each run), berth again with its
#         compressed blobs cached, docker push, and skopeo copy of already compressed blobs
#         (the floor); the registry's storage is emptied before every push run.
# The image: bench/make-large-image.sh (debootstrap minbase + 40 MB random + 5000 small
# files: ~300 MB unpacked, ~180 MB gzip). Every run starts after `sync`; nothing else should
# run on the machine meanwhile. Prints medians and ratios (peer / berth).
# Storage: every engine's root and the registry's storage live on a tmpfs of their own by
# default (BENCH_FS=tmpfs), so the figures compare the engines, not the state of a shared
# disk: on a busy ext4, inode allocation after mass deletions (ext4's recently_deleted scan)
# dominated and varied 1-8 s from run to run for every engine. BENCH_FS=disk puts them in
# /var/tmp instead.
# Run as root: bench/registry.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
for p in hyperfine skopeo docker-registry curl python3; do
  command -v "$p" >/dev/null || { echo "needs $p"; exit 1; }
done
CACHE=${BERTH_BENCH_CACHE:-/var/tmp/berth-bench}
[ -x bench/make-large-image.sh ] || { echo "needs bench/make-large-image.sh (the image engineer's)"; exit 1; }
bench/make-large-image.sh >/dev/null
[ -s "$CACHE/large.oci.tar" ] && [ -s "$CACHE/large.docker.tar" ] || { echo "no large image in $CACHE"; exit 1; }
cargo build --release -q -p berth-registry --example regctl
regctl="$PWD/target/release/examples/regctl"

work=$(mktemp -d /var/tmp/berth-regbench.XXXXXX)
data="$work/fs"
mkdir -p "$data"
if [ "${BENCH_FS:-tmpfs}" = tmpfs ]; then mount -t tmpfs -o size=12g berth-regbench "$data"; fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$port
dockerd_pid=""
cleanup() {
  set +e
  [ -f "$work/registry.pid" ] && kill "$(cat "$work/registry.pid")" 2>/dev/null
  if [ -n "$dockerd_pid" ]; then kill "$dockerd_pid"; wait "$dockerd_pid" 2>/dev/null; fi
  if command -v podman >/dev/null; then podman "${podman_opts[@]}" rmi -af >/dev/null 2>&1; fi
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT

# The registry, restartable with empty storage (hyperfine --prepare calls this).
cat >"$work/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $data/registry-storage
  delete:
    enabled: true
http:
  addr: $REG
EOF
cat >"$work/registry.sh" <<EOF
#!/usr/bin/env bash
# registry.sh start|reset
if [ -f $work/registry.pid ]; then
  kill \$(cat $work/registry.pid) 2>/dev/null
  while kill -0 \$(cat $work/registry.pid) 2>/dev/null; do sleep 0.05; done
fi
[ "\$1" = reset ] && rm -rf $data/registry-storage
setsid docker-registry serve $work/config.yml >>$work/registry.log 2>&1 < /dev/null &
echo \$! > $work/registry.pid
for i in \$(seq 200); do curl -sf -o /dev/null http://$REG/v2/ && exit 0; sleep 0.05; done
echo "registry did not start" >&2; exit 1
EOF
chmod +x "$work/registry.sh"
"$work/registry.sh" start

# The image in the registry (gzip layers, as skopeo writes them).
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci-archive:$CACHE/large.oci.tar" "docker://$REG/bench/large:1"

# Peers.
have_docker=0
if command -v dockerd >/dev/null && command -v docker >/dev/null; then
  mkdir -p "$work/docker"
  dockerd --data-root "$data/docker" --exec-root "$work/docker/exec" --pidfile "$work/docker/docker.pid" \
    -H "unix://$work/docker/docker.sock" --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
    >"$work/docker/dockerd.log" 2>&1 &
  dockerd_pid=$!
  export DOCKER_HOST="unix://$work/docker/docker.sock"
  for i in $(seq 300); do docker version >/dev/null 2>&1 && { have_docker=1; break; }; sleep 0.1; done
  [ "$have_docker" = 1 ] || echo "leaving out docker: dockerd did not start (see $work/docker/dockerd.log)"
fi
have_podman=0
podman_opts=(--root "$data/podman" --runroot "$work/podman/run" --storage-driver overlay --cgroup-manager cgroupfs --events-backend file)
if command -v podman >/dev/null; then
  mkdir -p "$work/podman"
  printf '[containers]\ndefault_ulimits = ["nofile=1024:1024"]\n' >"$work/podman/containers.conf"
  export CONTAINERS_CONF="$work/podman/containers.conf"
  if podman "${podman_opts[@]}" pull -q --tls-verify=false "$REG/bench/large:1" >/dev/null 2>"$work/podman/probe.log"; then
    have_podman=1
  else
    echo "leaving out podman: $(tail -1 "$work/podman/probe.log")"
  fi
fi

echo "storage: ${BENCH_FS:-tmpfs}; kernel $(uname -r), $(nproc) cores; image: $(du -m "$CACHE/large.oci.tar" | cut -f1) MB gzip archive, $runs runs each"
rmroot='for m in $(grep -o " '"$data"'/berth[^ ]*" /proc/self/mountinfo | sort -r); do umount -l $m; done; rm -rf '"$data"'/berth-root'
cmds=(-n "berth pull" --prepare "$rmroot; sync" "$regctl --root $data/berth-root --quiet pull $REG/bench/large:1")
cmds+=(-n "skopeo copy to dir (floor)" --prepare "rm -rf $data/skopeo-dir; sync" "skopeo --insecure-policy copy -q --src-tls-verify=false docker://$REG/bench/large:1 dir:$data/skopeo-dir")
[ "$have_docker" = 1 ] && cmds+=(-n "docker pull" --prepare "docker rmi -f $REG/bench/large:1 >/dev/null 2>&1; sync" "docker pull -q $REG/bench/large:1")
[ "$have_podman" = 1 ] && cmds+=(-n "podman pull" --prepare "podman ${podman_opts[*]} rmi -af >/dev/null 2>&1; sync" "podman ${podman_opts[*]} pull -q --tls-verify=false $REG/bench/large:1")
hyperfine --runs "$runs" --export-json "$work/pull.json" "${cmds[@]}" >"$work/pull.txt" 2>&1 || { cat "$work/pull.txt"; exit 1; }

# Push: the image as docker load has it (plain tar layers).
rmpush='for m in $(grep -o " '"$data"'/push[^ ]*" /proc/self/mountinfo | sort -r); do umount -l $m; done; rm -rf '"$data"'/push-root'
loadpush="$rmpush; $regctl --root $data/push-root load $CACHE/large.docker.tar $REG/bench/pushed:1 >/dev/null"
cmds=(-n "berth push" --prepare "$work/registry.sh reset && $loadpush && sync" "$regctl --root $data/push-root --quiet push $REG/bench/pushed:1")
# The same store again: its compressed blobs are cached from the previous push.
cmds+=(-n "berth push (compressed cached)" --prepare "$work/registry.sh reset && sync" "$regctl --root $data/push-root --quiet push $REG/bench/pushed:1")
skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$REG/bench/large:1" "dir:$data/push-dir"
cmds+=(-n "skopeo copy from dir (floor)" --prepare "$work/registry.sh reset && sync" "skopeo --insecure-policy copy -q --dest-tls-verify=false dir:$data/push-dir docker://$REG/bench/floor:1")
if [ "$have_docker" = 1 ]; then
  docker load -q -i "$CACHE/large.docker.tar" >/dev/null
  docker tag bench/large:1 "$REG/bench/pushed:1"
  cmds+=(-n "docker push" --prepare "$work/registry.sh reset && sync" "docker push -q $REG/bench/pushed:1")
fi
hyperfine --runs "$runs" --export-json "$work/push.json" "${cmds[@]}" >"$work/push.txt" 2>&1 || { cat "$work/push.txt"; exit 1; }

python3 - "$work/pull.json" "$work/push.json" <<'PY'
import json, sys
for path, base in [(sys.argv[1], "berth pull"), (sys.argv[2], "berth push")]:
    res = {r["command"]: r for r in json.load(open(path))["results"]}
    b = res[base]["median"]
    print(f"\n{'':32} {'median':>9} {'min':>8} {'max':>8}  ratio to {base}")
    for name, r in res.items():
        print(f"{name:32} {r['median']:8.2f}s {r['min']:7.2f}s {r['max']:7.2f}s  {r['median']/b:6.2f}x")
PY
