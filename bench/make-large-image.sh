#!/usr/bin/env bash
# Builds the large benchmark image once and caches it under /var/tmp/berth-bench:
#   layer 1: a debootstrap --variant=minbase rootfs (Debian bookworm)
#   layer 2: ~40 MB of random files (40 × 1 MiB)
#   layer 3: 5000 small files (4 KiB .. 12 KiB) in 50 directories
# Outputs large.docker.tar (docker-archive, plain layers, as `docker save` writes) and
# large.oci.tar (OCI archive with gzip layers, made by skopeo when installed).
set -euo pipefail
CACHE=${BERTH_BENCH_CACHE:-/var/tmp/berth-bench}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$CACHE"
cd "$CACHE"
if [ -s large.docker.tar ] && { [ -s large.oci.tar ] || ! command -v skopeo >/dev/null; }; then
    echo "cached: $CACHE/large.docker.tar"
    exit 0
fi
command -v debootstrap >/dev/null || apt-get install -y debootstrap
rm -rf work && mkdir -p work/rootfs work/random work/small
if [ ! -s rootfs.tar ]; then
    debootstrap --variant=minbase bookworm work/rootfs "$MIRROR" >work/debootstrap.log
    tar -C work/rootfs --numeric-owner --xattrs -cf rootfs.tar .
    rm -rf work/rootfs
fi
mkdir -p work/random/opt/random
for i in $(seq -w 1 40); do head -c 1048576 /dev/urandom >"work/random/opt/random/blob-$i.bin"; done
tar -C work/random --numeric-owner -cf random.tar .
python3 - <<'PY'
import os, random
random.seed(42)
base = "work/small/srv/small"
for d in range(50):
    p = f"{base}/d{d:02}"
    os.makedirs(p, exist_ok=True)
    for f in range(100):
        with open(f"{p}/f{f:03}.txt", "wb") as fh:
            fh.write(os.urandom(random.randint(4096, 12288)))
PY
tar -C work/small --numeric-owner -cf small.tar .
python3 - <<'PY'
import hashlib, json, os, tarfile, io
layers = ["rootfs.tar", "random.tar", "small.tar"]
diff_ids = []
for l in layers:
    h = hashlib.sha256()
    with open(l, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    diff_ids.append("sha256:" + h.hexdigest())
config = {
    "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
    "config": {"Cmd": ["/bin/bash"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
    "rootfs": {"type": "layers", "diff_ids": diff_ids},
    "history": [{"created": "2026-01-01T00:00:00Z", "created_by": c} for c in ["debootstrap minbase", "40 MB random", "5000 small files"]],
}
cfg = json.dumps(config, separators=(",", ":")).encode()
cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
manifest = [{"Config": cfg_name, "RepoTags": ["bench/large:1"], "Layers": [f"l{i}/layer.tar" for i in range(3)]}]
with tarfile.open("large.docker.tar.tmp", "w", format=tarfile.GNU_FORMAT) as t:
    for i, l in enumerate(layers):
        t.add(l, arcname=f"l{i}/layer.tar")
    for name, data in [(cfg_name, cfg), ("manifest.json", json.dumps(manifest).encode())]:
        ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
os.rename("large.docker.tar.tmp", "large.docker.tar")
PY
rm -f random.tar small.tar
if command -v skopeo >/dev/null; then
    rm -f large.oci.tar
    skopeo copy -q docker-archive:large.docker.tar oci-archive:large.oci.tar:bench/large:1
fi
rm -rf work
ls -la "$CACHE"
