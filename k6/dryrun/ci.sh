#!/usr/bin/env bash
# Proves the k6 scripts without k6: starts bin/artemis on a free loopback
# port, dry-runs every k6/*.js under Node.js (they must pass), then each
# deliberately broken script in k6/dryrun/testdata (each must fail).
set -euo pipefail
cd "$(dirname "$0")/../.."
port=$((20000 + RANDOM % 20000))
./bin/artemis server --addr "127.0.0.1:$port" >/dev/null 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null; wait $srv 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  node -e "fetch('http://127.0.0.1:$port/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" && break
  sleep 0.1
done
export BASE_URL="http://127.0.0.1:$port" RATE=20 HOLD_MS=500
# WebSocket is global from Node 22; Node 20 and 21 have it behind a flag.
wsflag=()
if [ "$(node -e 'process.stdout.write(typeof WebSocket)')" = undefined ]; then wsflag=(--experimental-websocket); fi
run() { node "${wsflag[@]}" --import ./k6/dryrun/register-hooks.mjs k6/dryrun/run.mjs "$@"; }
run
n=0
for broken in k6/dryrun/testdata/*.js; do
  if run "$broken" >/dev/null; then
    echo "k6 dry run: $broken passed but must fail"; exit 1
  fi
  echo "ok   $(basename "$broken") fails as it must"
  n=$((n + 1))
done
echo "k6-dryrun: $(ls k6/*.js | wc -l | tr -d ' ') scripts and $n broken ones checked"
echo "broken-scripts: $n passed, 0 failed"
