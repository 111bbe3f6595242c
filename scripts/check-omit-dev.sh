#!/usr/bin/env bash
# Proves that what `npm start` and the `hoist` bin need at run time is in "dependencies":
# copies the tracked files to a scratch directory, installs with `npm ci --omit=dev`, starts
# Hoist (`npm start`, embedded table and queue, secrets as scripts/start.sh sets them),
# asks it for an unknown route, a signed GitHub ping and, through the bin, its runs; then
# stops it. Needs no Docker: nothing here builds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d /tmp/hoist-omit-dev.XXXXXX)
pid=""
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT
fail() {
  echo "check-omit-dev: $*" >&2
  [[ -f $scratch/start.log ]] && sed 's/^/  start: /' "$scratch/start.log" >&2
  exit 1
}

# The working tree's tracked files, as a clone of this commit would have them (plus edits).
git -C "$root" ls-files -z | (cd "$root" && tar --null -T - -cf -) | tar -xf - -C "$scratch"
cd "$scratch"
npm ci --omit=dev --no-audit --no-fund --prefer-offline --loglevel=error >npm.log 2>&1 || { cat npm.log >&2; fail "npm ci --omit=dev failed"; }
for dev in typescript vitest; do
  [[ ! -e node_modules/$dev ]] || fail "$dev is installed although dev dependencies were omitted"
done

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
secret=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
export HOIST_PORT=$port HOIST_DATA_DIR=$scratch/data HOIST_REGISTRY=127.0.0.1:5000 HOIST_API_TOKEN=$token
export GITHUB_WEBHOOK_SECRET=$secret GITLAB_WEBHOOK_TOKEN=$secret
unset AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_SQS HOIST_QUEUE_URL HOIST_URL
# Its own process group, so the stop reaches npm, tsx and node alike.
setsid npm start --silent >start.log 2>&1 &
pid=$!

url=http://127.0.0.1:$port
deadline=$((SECONDS + 60))
until curl -fs -o /dev/null "$url/health" 2>/dev/null || [[ $(curl -s -o /dev/null -w '%{http_code}' "$url/" 2>/dev/null) == 404 ]]; do
  kill -0 "$pid" 2>/dev/null || fail "npm start exited before it listened"
  ((SECONDS < deadline)) || fail "npm start did not listen on $url within 60 s"
  sleep 0.2
done

code=$(curl -s -o /dev/null -w '%{http_code}' "$url/no-such-route")
[[ $code == 404 ]] || fail "GET /no-such-route answered $code, not 404"

body='{"zen":"Keep it logically awesome.","hook_id":1}'
sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
delivery=omit-dev-$RANDOM
answer=$(curl -s -w '\n%{http_code}' -X POST "$url/hooks/github" -H 'content-type: application/json' \
  -H 'X-GitHub-Event: ping' -H "X-GitHub-Delivery: $delivery" -H "X-Hub-Signature-256: sha256=$sig" --data "$body")
[[ ${answer##*$'\n'} == 200 && $answer == *"\"pong\":\"$delivery\""* ]] || fail "the signed ping answered: $answer"

# The bin, as `npx hoist` runs it, against that server.
runs=$(NO_COLOR=1 node scripts/hoist.mjs runs --url "$url" --token "$token" 2>&1) || fail "hoist runs failed: $runs"

kill -TERM -- "-$pid"
wait "$pid" 2>/dev/null || true
pid=""
echo "check-omit-dev: npm ci --omit=dev, then npm start answered 404, the signed ping and \`hoist runs\`: ok"
