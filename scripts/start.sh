#!/usr/bin/env bash
# Hoist's main job on embedded defaults, from a fresh Debian machine: installs what is
# missing, starts the Docker engine and the local registry, then runs every function in
# one process (`npm start`) with an embedded table and queue under .hoist/, and a router
# (HAProxy on 127.0.0.1:8000) in front of a `local` environment on the local engine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/services.sh

# Secrets for this machine, made once and kept out of git (.hoist/ is ignored).
mkdir -p .hoist
if [[ ! -f .hoist/secrets.env ]]; then
  umask 077
  {
    echo "GITHUB_WEBHOOK_SECRET=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
    echo "GITLAB_WEBHOOK_TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
    echo "HOIST_API_TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
  } > .hoist/secrets.env
  echo "start.sh: wrote webhook secrets and the API token to .hoist/secrets.env"
fi
set -a
# shellcheck disable=SC1091
source .hoist/secrets.env
: "${HOIST_REGISTRY:=127.0.0.1:5000}"
# A router on 127.0.0.1:8000 and a `local` environment behind it: what `hoist demo` releases to.
: "${HOIST_LOCAL_ROUTER_PORT:=8000}"
set +a
exec npm start --silent
