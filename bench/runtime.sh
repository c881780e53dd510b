#!/usr/bin/env bash
# berth-runtime against runc and crun on the same busybox bundle, side by side:
#   - `run` of a container that runs `true` (create + start + wait + delete in one)
#   - the lifecycle create; start; delete as three calls (what containerd does)
#   - peak RSS of the runtime process during `run`
# Prints medians and ratios (berth / peer). Run as root: bench/runtime.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)"; exit 1; }
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)"; exit 1; }
cargo build --release -q -p berth-runtime-cli
berth="$PWD/target/release/berth-runtime"

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
cleanup() {
  for rt in berth runc crun; do "${bin[$rt]:-true}" --root "$work/state-$rt" delete --force bench-$rt >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
declare -A bin=([berth]="$berth")
command -v runc >/dev/null && bin[runc]=$(command -v runc)
command -v crun >/dev/null && bin[crun]=$(command -v crun)
trap cleanup EXIT

mkdir -p "$work/bundle/rootfs/bin"
cp /bin/busybox "$work/bundle/rootfs/bin/"
for a in sh true; do ln -s busybox "$work/bundle/rootfs/bin/$a"; done
mkdir -p "$work/bundle/rootfs/"{proc,sys,dev,tmp,etc}
"$berth" spec --bundle "$work/bundle"
# The same config for everyone: runc's default spec, no terminal, runs `true`
# (ociVersion 1.0.2: crun 1.8 refuses newer).
sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"true"/; s/"ociVersion": "1.2.0"/"ociVersion": "1.0.2"/' "$work/bundle/config.json"

# A peer that cannot run here (crun 1.8 refuses hybrid cgroup hosts) is left out, with why.
for rt in runc crun; do
  [ -n "${bin[$rt]:-}" ] || continue
  if ! err=$("${bin[$rt]}" --root "$work/state-$rt" run --bundle "$work/bundle" probe-$rt 2>&1); then
    echo "leaving out $rt: $err"
    "${bin[$rt]}" --root "$work/state-$rt" delete --force probe-$rt >/dev/null 2>&1 || true
    unset "bin[$rt]"
  fi
done
echo "runtimes: $(for r in berth runc crun; do [ -n "${bin[$r]:-}" ] && printf '%s ' "$r"; done)"
echo "kernel $(uname -r), $(nproc) cores; $runs runs each"
cmds_run=(); cmds_life=()
for rt in berth runc crun; do
  [ -n "${bin[$rt]:-}" ] || continue
  b=${bin[$rt]}; st="$work/state-$rt"
  cmds_run+=(-n "$rt run" "$b --root $st run --bundle $work/bundle bench-$rt")
  cmds_life+=(-n "$rt create+start+delete" "$b --root $st create --bundle $work/bundle bench-$rt && $b --root $st start bench-$rt && $b --root $st delete --force bench-$rt")
done
hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/run.json" "${cmds_run[@]}" >/dev/null
hyperfine --warmup 5 --runs "$runs" --export-json "$work/life.json" "${cmds_life[@]}" >/dev/null

for rt in berth runc crun; do
  [ -n "${bin[$rt]:-}" ] || continue
  b=${bin[$rt]}; st="$work/state-$rt"
  rss=$(for i in 1 2 3 4 5; do /usr/bin/time -f %M "$b" --root "$st" run --bundle "$work/bundle" bench-$rt 2>&1 >/dev/null | tail -1; done | sort -n | sed -n 3p)
  echo "$rt $rss" >> "$work/rss"
done

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
def load(name):
    return {r["command"].split(" ")[0]: r for r in json.load(open(f"{work}/{name}.json"))["results"]}
rss = dict(l.split() for l in open(f"{work}/rss"))
for title, name in [("run (create+start+wait+delete)", "run"), ("create; start; delete (3 calls)", "life")]:
    res = load(name)
    base = res["berth"]["median"]
    print(f"\n{title}: median ms (ratio berth/peer)")
    for rt, r in res.items():
        ratio = "" if rt == "berth" else f"  berth is {r['median']/base:.1f}x faster"
        print(f"  {rt:6} {r['median']*1000:7.2f} ms{ratio}")
print("\npeak RSS of the runtime during run (median of 5)")
for rt, kb in rss.items():
    print(f"  {rt:6} {int(kb)/1024:6.1f} MiB")
PY
