#!/usr/bin/env bash
# Installs what building and testing berth needs on a Debian machine (run as root).
#   scripts/install-deps.sh          build dependencies
#   scripts/install-deps.sh test     plus everything the test suite drives
set -euo pipefail

pkgs=(busybox-static libseccomp-dev pkg-config gcc libc6-dev ca-certificates curl iproute2 nftables)
if [ "${1:-}" = "test" ]; then
  # docker.io and containerd: the runtime is tested as a drop-in under the real engines.
  # docker-compose (1.29, Python) and docker-py drive builds and containers as users do.
  # git and python3: remote build contexts (a repository and a file server on loopback).
  pkgs+=(git python3 iproute2 nftables docker-registry skopeo apache2-utils procps util-linux docker.io containerd docker-compose)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Rust: the machine's toolchain if there is one, else rustup's stable.
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
# docker-py 7 for the python3 on PATH (Debian's python3-docker is 5, compose's own).
if [ "${1:-}" = "test" ] && ! python3 -c 'import docker, sys; sys.exit(int(docker.__version__.split(".")[0]) < 7)' 2>/dev/null; then
  python3 -m pip install -q 'docker>=7,<8'
fi
if [ "${1:-}" = "test" ] && ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
