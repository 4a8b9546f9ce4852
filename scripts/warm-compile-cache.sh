#!/usr/bin/env bash
# Fills Node's compile cache (the directory NODE_COMPILE_CACHE names) with every module `warden
# proxy`, its audit writer thread, `warden collector` and `warden demo` load: their types stripped
# and their code compiled. The image runs it at build time so that no start of the sidecar loads
# Node's TypeScript stripper (a WebAssembly module that stays resident, ~18 MB in each thread that
# loads it). Node keeps one cache per user id, Node release and set of V8 flags, and checks each
# entry against its source file: run it as the user who will run warden, with the node flags warden
# will run with (the image does both: after `USER node`, with its ENTRYPOINT's flags).
#
# Usage: NODE_COMPILE_CACHE=DIR scripts/warm-compile-cache.sh [NODE_FLAG...]
set -euo pipefail
: "${NODE_COMPILE_CACHE:?set NODE_COMPILE_CACHE to the directory to fill}"
cd "$(dirname "$0")/.."
# (Expanded as ${node_flags[@]+…}: an empty array is "unbound" to bash before 4.4 under set -u.)
node_flags=("$@")
scratch="$(mktemp -d)"
server=""
# However the script ends, no server it started outlives it.
trap '[ -z "$server" ] || kill -9 "$server" 2> /dev/null || true; rm -rf "$scratch"' EXIT
export WARDEN_LOG_LEVEL=info

# The demo also runs the sidecar's stages on real calls, so it doubles as the image's smoke test.
WARDEN_DATA_DIR="$scratch/demo" node ${node_flags[@]+"${node_flags[@]}"} bin/warden.js demo > "$scratch/demo.out" 2>&1 \
  || { cat "$scratch/demo.out" >&2; exit 1; }

fail() {
  echo "warm-compile-cache: $1:" >&2
  cat "$2" >&2
  exit 1
}

# Starts a long-running command, waits for the log line that says it is serving, then stops it with
# SIGTERM and waits for it to exit 0: Node writes each thread's cache as the thread exits.
serve_then_stop() {
  local ready="$1" name="$2" out="$scratch/$2.out" tenths=0
  shift 2
  "$@" > "$out" 2>&1 &
  server=$!
  until grep -q "\"msg\":\"$ready\"" "$out"; do
    kill -0 "$server" 2> /dev/null || fail "$name exited before it was ready" "$out"
    [ "$tenths" -lt 600 ] || fail "$name was not ready within 60 s" "$out"
    sleep 0.1
    tenths=$((tenths + 1))
  done
  kill -TERM "$server" 2> /dev/null || true
  tenths=0
  while kill -0 "$server" 2> /dev/null; do
    [ "$tenths" -lt 600 ] || fail "$name did not stop within 60 s of SIGTERM" "$out"
    sleep 0.1
    tenths=$((tenths + 1))
  done
  wait "$server" || fail "$name did not exit cleanly" "$out"
  server=""
}

WARDEN_DATA_DIR="$scratch/proxy" serve_then_stop 'warden listening' proxy \
  node ${node_flags[@]+"${node_flags[@]}"} bin/warden.js proxy --policy policies/examples/demo.yaml --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --no-watch
WARDEN_COLLECTOR_TOKENS=warm=warm serve_then_stop 'collector listening' collector \
  node ${node_flags[@]+"${node_flags[@]}"} bin/warden.js collector --store "sqlite:$scratch/collector.db" --listen 127.0.0.1:0
