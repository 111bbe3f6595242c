#!/usr/bin/env bash
# Starts what Hoist drives on this machine, unless it already runs:
#   dockerd on unix:///var/run/docker.sock, a registry on http://127.0.0.1:5000 (no TLS,
#   no auth: the engine trusts loopback registries), a single-node swarm, then the local
#   base images.
# Installs nothing: packages come from another script (see the message below).
set -euo pipefail

REGISTRY_ADDR=127.0.0.1:5000
REGISTRY_DIR=${HOIST_REGISTRY_DIR:-/var/lib/hoist-registry}

missing=()
for bin in dockerd docker docker-registry curl; do
  command -v "$bin" >/dev/null || missing+=("$bin")
done
[[ -x /bin/busybox ]] || missing+=(/bin/busybox)
if ((${#missing[@]})); then
  echo "services.sh: missing ${missing[*]}: apt-get install -y docker.io docker-registry busybox-static curl" >&2
  exit 1
fi

# wait_for SECONDS WHAT COMMAND...: polls COMMAND until it succeeds or the deadline passes.
wait_for() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "services.sh: $what did not come up in time" >&2
      return 1
    fi
    sleep 0.2
  done
}

if ! docker info >/dev/null 2>&1; then
  echo "services.sh: starting dockerd (log: /tmp/dockerd.log)"
  setsid dockerd --host unix:///var/run/docker.sock >/tmp/dockerd.log 2>&1 < /dev/null &
  wait_for 60 "dockerd (see /tmp/dockerd.log)" docker info
fi

# A single-node swarm for releases in Swarm mode (lib/engine/swarm-instances.ts). Loopback
# as the advertised address: there is no other node to reach, and it never changes.
if [[ $(docker info --format '{{.Swarm.LocalNodeState}}') != active ]]; then
  echo "services.sh: initialising a single-node swarm"
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
fi

if ! curl -sf "http://$REGISTRY_ADDR/v2/" >/dev/null; then
  mkdir -p "$REGISTRY_DIR/data"
  cat >"$REGISTRY_DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
  echo "services.sh: starting docker-registry on $REGISTRY_ADDR (log: /tmp/hoist-registry.log)"
  setsid docker-registry serve "$REGISTRY_DIR/config.yml" >/tmp/hoist-registry.log 2>&1 < /dev/null &
  wait_for 30 "docker-registry (see /tmp/hoist-registry.log)" curl -sf "http://$REGISTRY_ADDR/v2/"
fi

bash "$(dirname -- "${BASH_SOURCE[0]}")/images.sh"
