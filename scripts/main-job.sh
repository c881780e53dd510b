#!/usr/bin/env bash
# The main job on a fresh Debian machine (as root): install what is needed, build berth,
# make a busybox bundle from Debian's busybox-static, and run a container from it, offline.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
scripts/install-deps.sh

cargo build --release --locked -p berth-runtime-cli
bin="$PWD/target/release/berth-runtime"

work=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc"
cp /bin/busybox "$work/rootfs/bin/"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$work/rootfs/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$work/rootfs/etc/passwd"

"$bin" spec --bundle "$work"
# No terminal (this may run without one), and something to say.
sed -i 's/"terminal": true/"terminal": false/' "$work/config.json"
sed -i 's|"sh"|"sh", "-c", "echo Hello from a berth container: host $(hostname), pid $$, user $(id -un)"|' "$work/config.json"
sed -i 's|"namespaces": \[|"cgroupsPath": "berth-demo-'$$'", "namespaces": [|' "$work/config.json"

"$bin" --root /run/berth-runtime run --bundle "$work" "berth-demo-$$"
