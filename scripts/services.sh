#!/usr/bin/env bash
# Starts what Hoist drives on this machine, unless it already runs:
#   dockerd on unix:///var/run/docker.sock, a registry on http://127.0.0.1:5000 (no TLS,
#   no auth: the engine trusts loopback registries), a single-node swarm, then the local
#   base images;
#   a second dockerd on unix:///run/hoist-engine2/docker.sock standing in for another host
#   (its own data, and bridge hoist-br2 on 172.31.250.0/24; no swarm, no images: it pulls);
#   a registry on http://127.0.0.1:5001 that requires a login: user `hoist`, its password
#   made once into /var/lib/hoist-registry-auth/password (root only), where tests read it.
# Installs nothing: packages come from another script (see the message below).
set -euo pipefail

REGISTRY_ADDR=127.0.0.1:5000
REGISTRY_DIR=${HOIST_REGISTRY_DIR:-/var/lib/hoist-registry}
AUTH_REGISTRY_ADDR=127.0.0.1:5001
AUTH_REGISTRY_DIR=/var/lib/hoist-registry-auth
AUTH_REGISTRY_USER=hoist
ENGINE2_RUN=/run/hoist-engine2
ENGINE2_SOCKET=$ENGINE2_RUN/docker.sock
ENGINE2_DATA=/var/lib/hoist-engine2
ENGINE2_BRIDGE=hoist-br2
ENGINE2_BRIDGE_ADDR=172.31.250.1/24

missing=()
for bin in dockerd docker docker-registry curl htpasswd ip; do
  command -v "$bin" >/dev/null || missing+=("$bin")
done
[[ -x /bin/busybox ]] || missing+=(/bin/busybox)
if ((${#missing[@]})); then
  echo "services.sh: missing ${missing[*]}: apt-get install -y docker.io docker-registry busybox-static curl apache2-utils iproute2" >&2
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

# status_is URL CODE: whether URL answers with HTTP status CODE.
status_is() {
  [[ $(curl -s -o /dev/null -w '%{http_code}' "$1") == "$2" ]]
}

if ! docker info >/dev/null 2>&1; then
  echo "services.sh: starting dockerd (log: /tmp/dockerd.log)"
  # Every environment's app gets its own network: /24s from a /16 make room for 256 of them
  # (Docker's default pools hold about 30). docker0 keeps its own subnet, outside the pool: one
  # taken from the pool can be handed out again to an app network, and the bridge is lost.
  setsid dockerd --host unix:///var/run/docker.sock --bip 172.17.0.1/16 --default-address-pool base=10.210.0.0/16,size=24 >/tmp/dockerd.log 2>&1 < /dev/null &
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

# The second engine, as another host runs one: its own data, state, socket and bridge. It
# leaves iptables to the first engine, which owns the host's chains (two daemons rewriting
# them undo each other): so no NAT and no published ports there, neither of which Hoist
# uses. The host still reaches its containers at their bridge addresses, as HAProxy does,
# through the directly attached hoist-br2. Like any dockerd, it pulls from 127.0.0.0/8
# registries over plain HTTP.
if ! docker -H "unix://$ENGINE2_SOCKET" info >/dev/null 2>&1; then
  ip link show "$ENGINE2_BRIDGE" >/dev/null 2>&1 || ip link add name "$ENGINE2_BRIDGE" type bridge
  [[ $(ip -o addr show dev "$ENGINE2_BRIDGE") == *" $ENGINE2_BRIDGE_ADDR "* ]] || ip addr add "$ENGINE2_BRIDGE_ADDR" dev "$ENGINE2_BRIDGE"
  ip link set "$ENGINE2_BRIDGE" up
  mkdir -p "$ENGINE2_RUN" "$ENGINE2_DATA"
  echo "services.sh: starting a second dockerd on unix://$ENGINE2_SOCKET (log: /tmp/dockerd2.log)"
  setsid dockerd --host "unix://$ENGINE2_SOCKET" --data-root "$ENGINE2_DATA" --exec-root "$ENGINE2_RUN/exec" \
    --pidfile "$ENGINE2_RUN/dockerd.pid" --bridge "$ENGINE2_BRIDGE" --iptables=false --ip-masq=false \
    --default-address-pool base=10.211.0.0/16,size=24 \
    >/tmp/dockerd2.log 2>&1 < /dev/null &
  wait_for 60 "the second dockerd (see /tmp/dockerd2.log)" docker -H "unix://$ENGINE2_SOCKET" info
fi

# The registry with a login (it answers 401 to anyone else). The password is made once and
# kept, so engines and tests that use it keep working across runs. htpasswd reads it on
# stdin rather than in its arguments, which any process may read; bcrypt (-B) is the only
# hash the registry accepts.
if ! status_is "http://$AUTH_REGISTRY_ADDR/v2/" 401; then
  mkdir -p "$AUTH_REGISTRY_DIR/data"
  chmod 700 "$AUTH_REGISTRY_DIR"
  if [[ ! -s $AUTH_REGISTRY_DIR/password ]]; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '\n' >"$AUTH_REGISTRY_DIR/password")
  fi
  (umask 077 && htpasswd -niB "$AUTH_REGISTRY_USER" <"$AUTH_REGISTRY_DIR/password" >"$AUTH_REGISTRY_DIR/htpasswd")
  cat >"$AUTH_REGISTRY_DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $AUTH_REGISTRY_DIR/data
  delete:
    enabled: true
auth:
  htpasswd:
    realm: hoist-registry-auth
    path: $AUTH_REGISTRY_DIR/htpasswd
http:
  addr: $AUTH_REGISTRY_ADDR
EOF
  echo "services.sh: starting docker-registry with a login on $AUTH_REGISTRY_ADDR (log: /tmp/hoist-registry-auth.log)"
  setsid docker-registry serve "$AUTH_REGISTRY_DIR/config.yml" >/tmp/hoist-registry-auth.log 2>&1 < /dev/null &
  wait_for 30 "docker-registry with a login (see /tmp/hoist-registry-auth.log)" status_is "http://$AUTH_REGISTRY_ADDR/v2/" 401
fi

bash "$(dirname -- "${BASH_SOURCE[0]}")/images.sh"
