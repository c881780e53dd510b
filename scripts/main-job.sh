#!/usr/bin/env bash
# The main job on a fresh Debian machine (as root), offline once the build dependencies are
# there: build berth, make a busybox image from Debian's busybox-static with `berth import`,
# build an application image on it from a Dockerfile with `berth build`, and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
scripts/install-deps.sh

cargo build --release --locked -p berth-cli -p berth-runtime-cli
bin="$PWD/target/release"

work=$(mktemp -d /tmp/berth-demo.XXXXXX)
root="$work/root"
state="$work/state"
sock="$state/berth.sock"
cleanup() {
  [ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  ip link delete berthdemo0 2>/dev/null || true
  nft delete table ip berth_demo 2>/dev/null || true
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
  for d in /sys/fs/cgroup/berth-demo /sys/fs/cgroup/*/berth-demo; do
    [ -d "$d" ] && rmdir "$d" 2>/dev/null || true
  done
}
trap cleanup EXIT

# An image made here, from the host's busybox: a root filesystem tar, imported.
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp /bin/busybox "$work/rootfs/bin/"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$work/rootfs/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$work/rootfs/etc/passwd"
echo "root:x:0:" > "$work/rootfs/etc/group"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .

"$bin/berth" daemon --root "$root" --state "$state" -H "unix://$sock" \
  --bridge berthdemo0 --nft-table berth_demo --cgroup-parent berth-demo >"$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done

B=("$bin/berth" -H "unix://$sock")
"${B[@]}" import -c 'CMD ["/bin/sh"]' "$work/busybox.tar" busybox:demo

# An application on it, built from a Dockerfile by berth's own builder.
mkdir -p "$work/app"
cat >"$work/app/hello.sh" <<'EOF'
#!/bin/sh
echo "Hello from a berth container: host $(hostname), $(id -un), address $(ip -4 -o addr show eth0 | awk '{print $4}')"
echo "built at $(cat /etc/built-at) by berth build; $GREETING"
EOF
cat >"$work/app/Dockerfile" <<'EOF'
FROM busybox:demo
ENV GREETING="running as a light, isolated, metered process"
RUN date -u +%FT%TZ > /etc/built-at
COPY --chmod=0755 hello.sh /usr/local/bin/hello
CMD ["hello"]
EOF
"${B[@]}" build -t hello:demo "$work/app"
"${B[@]}" images
"${B[@]}" run --rm hello:demo
