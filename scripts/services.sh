#!/usr/bin/env bash
# Starts what Hoist drives on this machine, unless it already runs:
#   dockerd on unix:///var/run/docker.sock, a registry on http://127.0.0.1:5000 (no TLS,
#   no auth: the engine trusts loopback registries), a single-node swarm, then the local
#   base images;
#   a second dockerd on unix:///run/hoist-engine2/docker.sock standing in for another host
#   (its own data, and bridge hoist-br2; no swarm, no images: it pulls);
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

# The engines' bridges and address pools are ranges that no route of this machine uses yet.
# A machine's own network can be anywhere (a CI runner's is often 172.17.0.0/16 or in
# 10.0.0.0/8, Docker's own defaults), and a bridge on the machine's subnet is one the machine
# cannot reach: HAProxy, on the machine, would answer 503 for every container behind it.
# taken: the ranges in use, as "first last" integers; each pick adds to it.
taken=()
cidr_range() {
  local addr=${1%/*} len=32 a b c d
  [[ $1 == */* ]] && len=${1#*/}
  IFS=. read -r a b c d <<<"$addr"
  local mask=$(((0xffffffff << (32 - len)) & 0xffffffff))
  local first=$((((a << 24) | (b << 16) | (c << 8) | d) & mask))
  echo "$first $((first + (1 << (32 - len)) - 1))"
}
while read -r dst _; do
  [[ $dst == default ]] || taken+=("$(cidr_range "$dst")")
done < <(ip -4 route show table main)
# pick_subnet VAR CIDR...: sets VAR to the first CIDR that overlaps nothing taken, and takes it.
pick_subnet() {
  local var=$1 cidr range t
  shift
  for cidr in "$@"; do
    range=$(cidr_range "$cidr")
    for t in "${taken[@]}"; do
      ((${range% *} <= ${t#* } && ${t% *} <= ${range#* })) && continue 2
    done
    taken+=("$range")
    printf -v "$var" %s "$cidr"
    return
  done
  echo "services.sh: every range in $* overlaps a route of this machine (ip -4 route); free one of them" >&2
  exit 1
}
POOLS=(10.{210..250}.0.0/16)
# take_pools: takes the first engine's address pools (the bridges' and, on a swarm, the
# overlays'), whole: only their used parts have routes.
take_pools() {
  local base
  for base in $(docker info --format '{{range .DefaultAddressPools}}{{.Base}} {{end}}{{with .Swarm.Cluster}}{{range .DefaultAddrPool}}{{.}} {{end}}{{end}}') $(engine2_pools); do
    taken+=("$(cidr_range "$base")")
  done
}
# engine2_pools: the second engine's bridge pools, when it runs (its unused parts have no routes).
engine2_pools() {
  docker -H "unix://$ENGINE2_SOCKET" info --format '{{range .DefaultAddressPools}}{{.Base}} {{end}}' 2>/dev/null || true
}

# status_is URL CODE: whether URL answers with HTTP status CODE.
status_is() {
  [[ $(curl -s -o /dev/null -w '%{http_code}' "$1") == "$2" ]]
}

if ! docker info >/dev/null 2>&1; then
  # Every environment's app gets its own network: /24s from a /16 make room for 256 of them
  # (Docker's default pools hold about 30). docker0 keeps its own subnet, outside the pool: one
  # taken from the pool can be handed out again to an app network, and the bridge is lost.
  pick_subnet bridge_net 172.{17..30}.0.0/16 192.168.{0..240..16}.0/20
  pick_subnet pool "${POOLS[@]}"
  echo "services.sh: starting dockerd, docker0 on $bridge_net, networks from $pool (log: /tmp/dockerd.log)"
  setsid dockerd --host unix:///var/run/docker.sock --bip "${bridge_net%.0/*}.1/${bridge_net#*/}" --default-address-pool "base=$pool,size=24" >/tmp/dockerd.log 2>&1 < /dev/null &
  wait_for 60 "dockerd (see /tmp/dockerd.log)" docker info
fi

take_pools

# A swarm kept from an earlier start (the engine's state outlives it) keeps the overlay pool
# it was made with, which the engine's bridge pool, picked before the engine could be asked,
# may now overlap: the node would then fail every overlay task ("Pool overlaps with other one
# on this address space"); one the second engine's pool overlaps puts the host's route to an
# overlay task's edge network and one of that engine's networks on the same subnet. Such a
# swarm is left, and a new one made below.
engine_pools="$(docker info --format '{{range .DefaultAddressPools}}{{.Base}} {{end}}') $(engine2_pools)"
for swarm_base in $(docker info --format '{{with .Swarm.Cluster}}{{range .DefaultAddrPool}}{{.}} {{end}}{{end}}'); do
  for engine_base in $engine_pools; do
    read -r s1 s2 <<<"$(cidr_range "$swarm_base")"
    read -r e1 e2 <<<"$(cidr_range "$engine_base")"
    if ((s1 <= e2 && e1 <= s2)); then
      echo "services.sh: the swarm kept from an earlier start hands out overlays from $swarm_base, which an engine's own pool $engine_base overlaps: leaving it for a new one"
      docker swarm leave --force >/dev/null
      break 2
    fi
  done
done

# A single-node swarm for releases in Swarm mode (lib/engine/swarm-instances.ts). Loopback
# as the advertised address: there is no other node to reach, and it never changes.
if [[ $(docker info --format '{{.Swarm.LocalNodeState}}') != active ]]; then
  pick_subnet swarm_pool "${POOLS[@]}"
  echo "services.sh: initialising a single-node swarm, overlay networks from $swarm_pool"
  docker swarm init --advertise-addr 127.0.0.1 --default-addr-pool "$swarm_pool" --default-addr-pool-mask-length 24 >/dev/null
fi
take_pools

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
# --live-restore, because a dockerd with its own address pools that finds its stored default
# network at start deletes it and then the interface named docker0, whatever its --bridge:
# a restart of this engine would take the first engine's bridge away (moby's
# configureNetworking skips that under live restore).
if ! docker -H "unix://$ENGINE2_SOCKET" info >/dev/null 2>&1; then
  ip link show "$ENGINE2_BRIDGE" >/dev/null 2>&1 || ip link add name "$ENGINE2_BRIDGE" type bridge
  if [[ -z $(ip -4 -o addr show dev "$ENGINE2_BRIDGE") ]]; then
    pick_subnet bridge2_net 172.31.250.0/24 192.168.250.0/24 10.{210..250}.250.0/24
    ip addr add "${bridge2_net%.0/*}.1/24" dev "$ENGINE2_BRIDGE"
  fi
  ip link set "$ENGINE2_BRIDGE" up
  pick_subnet pool2 "${POOLS[@]}"
  mkdir -p "$ENGINE2_RUN" "$ENGINE2_DATA"
  echo "services.sh: starting a second dockerd on unix://$ENGINE2_SOCKET, networks from $pool2 (log: /tmp/dockerd2.log)"
  setsid dockerd --host "unix://$ENGINE2_SOCKET" --data-root "$ENGINE2_DATA" --exec-root "$ENGINE2_RUN/exec" \
    --pidfile "$ENGINE2_RUN/dockerd.pid" --bridge "$ENGINE2_BRIDGE" --iptables=false --ip-masq=false --live-restore \
    --default-address-pool "base=$pool2,size=24" \
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

# The router runs on this machine and reaches instances at their addresses on the engine's
# bridges: check that it can, once, before anything relies on it.
probe=$(docker run -d --rm --label hoist.probe=1 hoist/busybox:latest httpd -f -p 8080 -h /www) ||
  { echo "services.sh: no container starts on docker0 (ip addr show docker0; /tmp/dockerd.log)" >&2; exit 1; }
trap 'docker rm -f "$probe" >/dev/null 2>&1 || true' EXIT
probe_addr=$(docker inspect --format '{{.NetworkSettings.IPAddress}}' "$probe")
wait_for 20 "a container on docker0 ($probe_addr) answering this machine (ip route get $probe_addr: $(ip route get "$probe_addr" | head -1))" \
  status_is "http://$probe_addr:8080/" 404
