#!/usr/bin/env bash
# Fills Node's compile cache (the directory NODE_COMPILE_CACHE names) with every module `warden
# proxy`, its audit writer thread, `warden collector` and `warden demo` load: their types stripped
# and their code compiled. The image runs it at build time so that no start of the sidecar loads
# Node's TypeScript stripper (a WebAssembly module that stays resident, ~18 MB in each thread that
# loads it); the cache stays valid as long as the sources, the Node release and NODE_OPTIONS are the
# ones it was filled with (the image sets NODE_OPTIONS before running this).
#
# Usage: NODE_COMPILE_CACHE=DIR scripts/warm-compile-cache.sh
set -euo pipefail
: "${NODE_COMPILE_CACHE:?set NODE_COMPILE_CACHE to the directory to fill}"
cd "$(dirname "$0")/.."
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export WARDEN_LOG_LEVEL=info

# The demo also runs the sidecar's stages on real calls, so it doubles as the image's smoke test.
WARDEN_DATA_DIR="$scratch/demo" node bin/warden.js demo > "$scratch/demo.out" \
  || { cat "$scratch/demo.out" >&2; exit 1; }

# Starts a long-running command, waits for the log line that says it is serving, then stops it with
# SIGTERM: Node writes the cache of each thread as the thread exits.
serve_then_stop() {
  local ready="$1" name="$2"
  shift 2
  "$@" > "$scratch/$name.out" 2>&1 &
  local pid=$! waited=0
  until grep -q "\"msg\":\"$ready\"" "$scratch/$name.out"; do
    if ! kill -0 "$pid" 2> /dev/null || [ "$waited" -ge 300 ]; then
      echo "warm-compile-cache: $name did not start:" >&2
      cat "$scratch/$name.out" >&2
      kill -9 "$pid" 2> /dev/null || true
      exit 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  kill -TERM "$pid"
  wait "$pid"
}

WARDEN_DATA_DIR="$scratch/proxy" serve_then_stop 'warden listening' proxy \
  node bin/warden.js proxy --policy policies/examples/demo.yaml --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --no-watch
WARDEN_COLLECTOR_TOKENS=warm=warm serve_then_stop 'collector listening' collector \
  node bin/warden.js collector --store "sqlite:$scratch/collector.db" --listen 127.0.0.1:0
