#!/usr/bin/env bash
# Installs the Debian packages Hoist drives locally and in tests, only those missing:
# Docker engine, a registry, busybox (the base image's rootfs), git, curl; HAProxy and socat
# for the release router; openssl and openssh-server for the remote-engine tests (TLS, SSH);
# gcc and libc6-dev to build the release tests' web app as one static binary; apache2-utils
# (htpasswd) and iproute2 for the registry with a login and the second engine's bridge.
# Then the npm dependencies, exactly as locked.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in docker.io docker-registry busybox-static git curl haproxy socat openssl openssh-server wrk gcc libc6-dev apache2-utils iproute2; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
  echo "install.sh: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
