#!/usr/bin/env bash
# Proves the k6 scripts without k6: starts bin/artemis on a free loopback
# port, dry-runs every k6/*.js under Node.js (they must pass), then each
# deliberately broken script in k6/dryrun/testdata: each must fail, and for
# the reason its "// want: ..." line names, which must appear in the
# runner's output. Any other outcome prints that output and fails.
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
passed=0
failed=0
for broken in k6/dryrun/testdata/*.js; do
  name=$(basename "$broken")
  want=$(sed -n 's|^// want: ||p' "$broken" | head -1)
  if [ -z "$want" ]; then
    echo "FAIL $name has no '// want: ...' line naming the failure it must cause"
    failed=$((failed + 1))
  elif out=$(run "$broken" 2>&1); then
    echo "FAIL $name passed but must fail; its output:"
    sed 's/^/    /' <<<"$out"
    failed=$((failed + 1))
  elif ! grep -qF -- "$want" <<<"$out"; then
    echo "FAIL $name failed, but not with \"$want\"; its output:"
    sed 's/^/    /' <<<"$out"
    failed=$((failed + 1))
  else
    echo "ok   $name fails with \"$want\""
    passed=$((passed + 1))
  fi
done
echo "broken scripts: $passed passed (failed for the intended reason), $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
