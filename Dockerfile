# The Warden sidecar image. Node runs the TypeScript sources directly (type stripping), so there is no
# build step: the first stage only installs production dependencies (a native one compiles there when
# its prebuilt binary does not fit), and the runtime stage gets node_modules without the toolchain.
#
# Both stages use one exact Node release on one Debian release, so a rebuild gets the same runtime.
# To pin by digest as well (recommended for production), append what
#   docker buildx imagetools inspect node:24.21.0-bookworm-slim --format '{{json .Manifest.Digest}}'
# prints, as `@sha256:…`, to both FROM lines.
FROM node:24.21.0-bookworm-slim AS deps
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:24.21.0-bookworm-slim
# tini is PID 1: it forwards SIGTERM/SIGINT to node (which drains and exits 0) and reaps zombies,
# which node does not do as PID 1. On ECS, `linuxParameters.initProcessEnabled: true` does the same.
RUN apt-get update && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*
# V8's heap sizing, measured under a sidecar's load (README, Performance). Left to itself, V8 grows the
# young generation to 128 MB, and lets the old one grow to up to four times what survives a full
# collection, which for the sidecar's ~30 MB of live objects is far more than it needs. 16 MB
# semi-spaces hold a call's objects until the call ends (an audited call waits for its record's
# commit), so few are promoted; the old generation then grows by at most its live size
# (--heap-growing-percent=100, on the ENTRYPOINT: NODE_OPTIONS does not take it). Against 4 MB
# semi-spaces and V8's own growth: ~20% more calls per second and ~20 MB less resident.
ENV NODE_OPTIONS="--max-semi-space-size=16"
# Read-only root file system: the sidecar writes only to WARDEN_DATA_DIR (a task volume) and /tmp
# (SQLite's temporary files). npm is not run, and the compile cache is filled at build time (below):
# a command it does not cover finds it read-only and goes on without writing to it.
ENV NODE_ENV=production \
    NODE_COMPILE_CACHE=/app/.compile-cache \
    WARDEN_DATA_DIR=/var/lib/warden \
    WARDEN_LISTEN=127.0.0.1:15100 \
    WARDEN_ADMIN_LISTEN=0.0.0.0:15101 \
    WARDEN_POLICY=/etc/warden/policy.yaml
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY proxy ./proxy
COPY policies ./policies
# The sidecar runs pacts (evals/); `warden collector` is the same image with another command.
COPY evals ./evals
COPY collector ./collector
# `warden deploy inject|remove|status` (deploy/ecs) and the example task definitions and dashboards.
COPY deploy ./deploy
RUN mkdir -p /var/lib/warden /etc/warden /app/.compile-cache \
    && cp policies/examples/minimal.yaml /etc/warden/policy.yaml \
    && chown -R node:node /var/lib/warden /app/.compile-cache
VOLUME /var/lib/warden
USER node
# Every module the sidecar, its audit writer, the collector and the demo load, with types stripped
# and compiled, so no start loads Node's TypeScript stripper (~18 MB resident per thread, ~30 MB in
# all); it runs the demo on the way, which is the image's smoke test. Filled as the user the sidecar
# runs as, in the environment it runs in, with the ENTRYPOINT's node flags: Node keeps a cache per
# user id, Node release and set of V8 flags.
COPY scripts/warm-compile-cache.sh ./scripts/
RUN scripts/warm-compile-cache.sh --heap-growing-percent=100
# The agent shares the task's localhost; the admin port is published for Prometheus and health checks.
EXPOSE 15100 15101
# No curl in the image: node's fetch probes /readyz on the admin port WARDEN_ADMIN_LISTEN names.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+((process.env.WARDEN_ADMIN_LISTEN||'').split(':').pop()||15101)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Fargate sends SIGTERM and waits stopTimeout (30 s max) before SIGKILL; the drain fits inside it.
STOPSIGNAL SIGTERM
# The command is the warden subcommand: `proxy` by default, `collector --store …` for the collector.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--heap-growing-percent=100", "/app/bin/warden.js"]
CMD ["proxy"]
