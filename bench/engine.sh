#!/usr/bin/env bash
# berth's daemon against dockerd (and podman when installed), side by side on the same image:
#   1. `run --rm --network none busybox true`, interleaved, medians and ratios; then each
#      engine alone (the others' daemons stopped while it is timed)
#   2. 100 detached containers started in a row, then 100 in parallel (10 at a time)
#   3. memory: each daemon idle, then per running container (berth's monitor against
#      containerd's shim), as RSS and as PSS (shared pages divided among their users)
#   4. `ps -a` with 500 containers
#   5. `run --rm busybox true` on each engine's default bridge, and the throughput of a TCP
#      stream from the host's 127.0.0.1 through a published port into a container
#
# Every daemon is private to this run (its own root, socket, cgroup parent; berth with its own
# bridge and nftables table) and everything is removed at the end.
#   bench/engine.sh [RUNS]        (as root; build first: cargo build --release -p berth-cli)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
bin="$PWD/target/release"
[ -x "$bin/berth" ] && [ -x "$bin/berth-monitor" ] || { echo "build first: cargo build --release -p berth-cli -p berth-runtime-cli"; exit 1; }
image=../shared/fixtures/images/busybox.docker.tar
[ -f "$image" ] || { echo "needs $image"; exit 1; }
export BERTH_NO_AUTOSTART=1

work=$(mktemp -d /tmp/berth-bench-engine.XXXXXX)
tag=$$
# Run-time state on a tmpfs, data on the disk: where both engines keep them in production
# (/run/berth, /var/run/docker; /var/lib/berth, /var/lib/docker).
mkdir -p "$work/run"
mount -t tmpfs -o mode=0755 bench-run "$work/run"
bsock="$work/run/berth/berth.sock"
dsock="$work/docker.sock"
cg_b="berth-bench-$tag"
cg_d="docker-bench-$tag"
B=("$bin/berth" -H "unix://$bsock")
D=(docker -H "unix://$dsock")
P=()

cleanup() {
  set +e
  for p in ${bpid:-} ${dpid:-}; do kill -CONT $p $(pgrep -P $p) 2>/dev/null; done
  [ -S "$bsock" ] && "${B[@]}" ps -aq | xargs -r "${B[@]}" rm -f >/dev/null 2>&1
  [ -S "$dsock" ] && "${D[@]}" ps -aq | xargs -r "${D[@]}" rm -f >/dev/null 2>&1
  [ ${#P[@]} -gt 0 ] && "${P[@]}" rm -af >/dev/null 2>&1
  [ -n "${bpid:-}" ] && kill "$bpid" 2>/dev/null && wait "$bpid" 2>/dev/null
  [ -n "${dpid:-}" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
  [ ${#P[@]} -gt 0 ] && "${P[@]}" system reset -f >/dev/null 2>&1
  ip link delete "bb${tag}" 2>/dev/null
  ip link delete "db${tag}" 2>/dev/null
  nft delete table ip "berth_bench_$tag" 2>/dev/null
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
  for d in /sys/fs/cgroup/{,*/}{$cg_b,$cg_d}; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

# An engine's work goes on after its `run` returns (docker: the shim's exit, containerd's
# garbage collection; berth: the trash emptied in the background). A short pause after each
# timed run lets it finish, so that it is not counted in the next run of another engine.
settle() { sleep 0.2; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# The time in microseconds, into the variable named $1. No fork: `$(date +%s%N)` around a
# command added about 2.7 ms to every figure here (a subshell and an exec at each end, and
# the flags' own substitution), which is a tenth of a berth run and a hundredth of docker's.
stamp() { printf -v "$1" '%s' "${EPOCHREALTIME/./}"; }
kib() { awk -v k="$1" '/^(VmRSS|Pss):/ && $1 == k":" {print $2}' "$2" 2>/dev/null || echo 0; }
rss() { local t=0 p; for p in "$@"; do t=$(( t + $(awk '/^VmRSS:/ {print $2}' /proc/$p/status 2>/dev/null || echo 0) )); done; echo $t; }
pss() { local t=0 p; for p in "$@"; do t=$(( t + $(awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup 2>/dev/null || echo 0) )); done; echo $t; }

echo "kernel $(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $runs runs each"

# --- the daemons --------------------------------------------------------------------------
"$bin/berth" daemon --root "$work/berth/root" --state "$work/run/berth" \
  --cgroup-parent "$cg_b" --bridge "bb${tag}" --nft-table "berth_bench_$tag" --link-prefix "bz" \
  >"$work/berth.log" 2>&1 &
bpid=$!
# dockerd's default bridge is one made here (so nothing of the host's is touched), without
# iptables rules: for 127.0.0.1 docker's path is its userland proxy either way.
net=$((tag % 250))
while ip -4 route show | grep -q "^10\.213\.$net\." || ip -4 -o addr show | grep -q " 10\.213\.$net\."; do
  net=$(( (net + 1) % 250 ))
done
ip link add "db${tag}" type bridge
ip addr add "10.213.$net.1/24" dev "db${tag}"
ip link set "db${tag}" up
dockerd --data-root "$work/docker/root" --exec-root "$work/run/docker" -H "unix://$dsock" \
  --pidfile "$work/docker.pid" --bridge="db${tag}" --iptables=false --ip6tables=false --ip-masq=false \
  --cgroup-parent="/$cg_d" >"$work/docker.log" 2>&1 &
dpid=$!
for _ in $(seq 300); do [ -S "$bsock" ] && [ -S "$dsock" ] && "${D[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
"${B[@]}" load -q -i "$image" >/dev/null
"${D[@]}" load -q -i "$image" >/dev/null
peers=(berth docker)
runflags() { [ "$1" = podman ] && echo "--cgroup-parent /$cg_d --ulimit nproc=4096:4096 --ulimit nofile=1024:1024" || true; }
# Computed once, outside the timed commands.
declare -A rf
for p in berth docker podman; do rf[$p]=$(runflags "$p"); done
if command -v podman >/dev/null; then
  mkdir -p "$work/podman"
  # podman on these machines: its nofile and nproc defaults are above the hard limits, and
  # crun refuses hybrid cgroup hosts, so runc, with limits it can set.
  printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' >"$work/podman/containers.conf"
  export CONTAINERS_CONF="$work/podman/containers.conf"
  P=(podman --root "$work/podman/root" --runroot "$work/run/podman" --tmpdir "$work/podman/tmp" --cgroup-manager cgroupfs --events-backend file --runtime runc)
  if "${P[@]}" load -q -i "$image" >/dev/null 2>&1 && "${P[@]}" run --rm --network none $(runflags podman) busybox true >"$work/podman.err" 2>&1; then
    peers+=(podman)
  else
    echo "leaving out podman: $(tail -1 "$work/podman.err")"
    P=()
  fi
fi
cli() {
  case $1 in
    berth) shift; "${B[@]}" "$@" ;;
    docker) shift; "${D[@]}" "$@" ;;
    podman) shift; "${P[@]}" "$@" ;;
  esac
}

# --- 1. run --rm ---------------------------------------------------------------------------
echo
echo "== run --rm --network none busybox true (interleaved; median of $runs)"
for p in "${peers[@]}"; do for _ in 1 2 3; do cli "$p" run --rm --network none $(runflags "$p") busybox true; done; done
declare -A med
for p in "${peers[@]}"; do : >"$work/t.$p"; done
for _ in $(seq "$runs"); do
  for p in "${peers[@]}"; do
    stamp t0; cli "$p" run --rm --network none ${rf[$p]} busybox true; stamp t1
    echo $((t1 - t0)) >>"$work/t.$p"
    settle
  done
done
for p in "${peers[@]}"; do med[$p]=$(median <"$work/t.$p"); done
for p in "${peers[@]}"; do
  awk -v p="$p" -v t="${med[$p]}" -v b="${med[berth]}" 'BEGIN {printf "  %-8s %8.1f ms   %5.1fx berth\n", p, t/1000, t/b}'
done
# The same, each engine alone: the other engines' daemons stopped (SIGSTOP, then SIGCONT)
# while one is timed, in rounds of 5 runs, so that nobody's background work lands in
# anybody else's figures (as on a machine that runs one engine).
daemon_pids() {
  case $1 in
    berth) echo "$bpid $(pgrep -P "$bpid" || true)" ;;
    docker) echo "$dpid $(pgrep -P "$dpid" || true)" ;;
  esac
}
for p in "${peers[@]}"; do : >"$work/a.$p"; done
for _ in $(seq $(( (runs + 4) / 5 ))); do
  for p in "${peers[@]}"; do
    stopped=""
    for o in berth docker; do [ "$o" != "$p" ] && stopped="$stopped $(daemon_pids "$o")"; done
    # docker's shims finish their exit after `run` returns: let them go before freezing.
    for _ in $(seq 50); do
      ps -eo args | grep -q "[c]ontainerd-shim.*$work" || break
      sleep 0.1
    done
    kill -STOP $stopped 2>/dev/null || true
    for _ in 1 2 3 4 5; do
      stamp t0; cli "$p" run --rm --network none ${rf[$p]} busybox true; stamp t1
      echo $((t1 - t0)) >>"$work/a.$p"
      settle
    done
    kill -CONT $stopped 2>/dev/null || true
  done
done
echo "  each alone (the other daemons stopped while it runs):"
for p in "${peers[@]}"; do med[$p]=$(median <"$work/a.$p"); done
for p in "${peers[@]}"; do
  awk -v p="$p" -v t="${med[$p]}" -v b="${med[berth]}" 'BEGIN {printf "  %-8s %8.1f ms   %5.1fx berth\n", p, t/1000, t/b}'
done
# The same daemon through docker's own CLI, to separate the daemons from the clients.
: >"$work/t.dcli"
for _ in $(seq "$runs"); do
  stamp t0; docker -H "unix://$bsock" run --rm --network none busybox true; stamp t1
  echo $((t1 - t0)) >>"$work/t.dcli"
done
awk -v t="$(median <"$work/t.dcli")" 'BEGIN {printf "  docker CLI against the berth daemon: %.1f ms\n", t/1000}'

# --- 2. 100 detached ---------------------------------------------------------------------
echo
echo "== 100 detached containers (run -d --network none busybox sleep 1d)"
for p in berth docker; do
  stamp t0
  for i in $(seq 100); do cli "$p" run -d --network none busybox sleep 1d >/dev/null; done
  stamp t1
  awk -v p="$p" -v t=$((t1 - t0)) 'BEGIN {printf "  %-8s in a row:    %7.2f s  (%.1f ms each)\n", p, t/1e6, t/1e5}'
  # --- 3. memory while 100 run ---
  if [ "$p" = berth ]; then
    # A container's first process is a child of its monitor.
    mons=$(for c in $("${B[@]}" ps -q); do ps -o ppid= -p "$("${B[@]}" inspect -f '{{.State.Pid}}' "$c")"; done | tr '\n' ' ')
    n=$(echo $mons | wc -w)
    echo "$p $(rss $mons) $(pss $mons) $n" >"$work/mem.$p"
  else
    shims=$(ps -eo pid,args | awk -v w="$work/run/docker" '/containerd-shim/ && index($0, w) {print $1}' | tr '\n' ' ')
    n=$(echo $shims | wc -w)
    echo "$p $(rss $shims) $(pss $shims) $n" >"$work/mem.$p"
  fi
  cli "$p" rm -f $(cli "$p" ps -aq) >/dev/null
  stamp t0
  seq 100 | xargs -P 10 -I{} "$([ "$p" = berth ] && echo "${B[0]}" || echo docker)" -H "unix://$([ "$p" = berth ] && echo "$bsock" || echo "$dsock")" run -d --network none busybox sleep 1d >/dev/null
  stamp t1
  awk -v p="$p" -v t=$((t1 - t0)) 'BEGIN {printf "  %-8s parallel:    %7.2f s  (%.1f ms each, 10 at a time)\n", p, t/1e6, t/1e5}'
  cli "$p" rm -f $(cli "$p" ps -aq) >/dev/null
done

echo
echo "== memory"
sleep 2
dproc=$(pgrep -P "$dpid" containerd || true)
printf "  berth daemon idle:     RSS %6d KiB  PSS %6d KiB\n" "$(rss $bpid)" "$(pss $bpid)"
printf "  dockerd + containerd:  RSS %6d KiB  PSS %6d KiB\n" "$(rss $dpid $dproc)" "$(pss $dpid $dproc)"
read -r _ r s n <"$work/mem.berth"
[ "$n" -gt 0 ] && printf "  per container, berth-monitor:   RSS %5d KiB  PSS %5d KiB  (%d running)\n" $((r / n)) $((s / n)) "$n"
read -r _ r s n <"$work/mem.docker"
[ "$n" -gt 0 ] && printf "  per container, containerd-shim: RSS %5d KiB  PSS %5d KiB  (%d running)\n" $((r / n)) $((s / n)) "$n"

# --- 4. ps with 500 containers ---------------------------------------------------------------
echo
echo "== ps -a with 500 (created) containers; median of $runs"
for p in berth docker; do
  seq 500 | xargs -P 4 -I{} "$([ "$p" = berth ] && echo "${B[0]}" || echo docker)" -H "unix://$([ "$p" = berth ] && echo "$bsock" || echo "$dsock")" create --network none busybox true >/dev/null
  : >"$work/ps.$p"
  for _ in $(seq "$runs"); do
    stamp t0; cli "$p" ps -a >/dev/null; stamp t1
    echo $((t1 - t0)) >>"$work/ps.$p"
  done
  med[$p]=$(median <"$work/ps.$p")
  # docker's CLI on berth's daemon too: the same client for both daemons.
  if [ "$p" = berth ]; then
    : >"$work/ps.dcli"
    for _ in $(seq "$runs"); do
      stamp t0; docker -H "unix://$bsock" ps -a >/dev/null; stamp t1
      echo $((t1 - t0)) >>"$work/ps.dcli"
    done
  fi
  cli "$p" ps -aq | xargs -r -n 100 "$([ "$p" = berth ] && echo "${B[0]}" || echo docker)" -H "unix://$([ "$p" = berth ] && echo "$bsock" || echo "$dsock")" rm -f >/dev/null
done
awk -v b="${med[berth]}" -v d="${med[docker]}" -v c="$(median <"$work/ps.dcli")" 'BEGIN {
  printf "  berth    %7.1f ms\n  docker   %7.1f ms   %.1fx berth\n  docker CLI against the berth daemon: %.1f ms\n", b/1000, d/1000, d/b, c/1000}'

# --- 5. the default bridge -------------------------------------------------------------------
echo
echo "== run --rm busybox true on the default bridge (interleaved; median of $runs)"
for p in berth docker; do for _ in 1 2 3; do cli "$p" run --rm busybox true; done; done
for p in berth docker; do : >"$work/br.$p"; done
for _ in $(seq "$runs"); do
  for p in berth docker; do
    stamp t0; cli "$p" run --rm busybox true; stamp t1
    echo $((t1 - t0)) >>"$work/br.$p"
    settle
  done
done
awk -v b="$(median <"$work/br.berth")" -v d="$(median <"$work/br.docker")" 'BEGIN {
  printf "  berth    %7.1f ms\n  docker   %7.1f ms   %.1fx berth\n", b/1000, d/1000, d/b}'

echo
echo "== 1 GiB from 127.0.0.1 through a published port into a container (median of 5)"
cat >"$work/send.py" <<'PY'
# Sends 1 GiB to 127.0.0.1:PORT and prints MB/s. The server may not listen yet (docker's proxy
# then accepts and resets): the whole transfer is tried again, up to 50 times.
import socket, sys, time
port = int(sys.argv[1]); total = 1 << 30; chunk = bytes(1 << 20)
for attempt in range(50):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        t0 = time.monotonic(); sent = 0
        while sent < total:
            s.sendall(chunk); sent += len(chunk)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
        print(int(total / (time.monotonic() - t0) / 1e6))
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("no transfer through port %d" % port)
PY
port=$((20000 + tag % 20000))
for p in berth docker; do
  port=$((port + 1))
  while ss -ltnH "sport = :$port" | grep -q .; do port=$((port + 1)); done
  : >"$work/tp.$p"
  for _ in 1 2 3 4 5; do
    # The received bytes go to /dev/null, not to stdout: that would be the container's log.
    c=$(cli "$p" run -d -p "127.0.0.1:$port:5000" busybox sh -c 'nc -l -p 5000 >/dev/null')
    sleep 0.5
    python3 "$work/send.py" "$port" >>"$work/tp.$p"
    cli "$p" rm -f "$c" >/dev/null
  done
done
awk -v b="$(median <"$work/tp.berth")" -v d="$(median <"$work/tp.docker")" 'BEGIN {
  printf "  berth  (nftables DNAT)   %6d MB/s\n  docker (userland proxy)  %6d MB/s   berth %.1fx\n", b, d, b/d}'
