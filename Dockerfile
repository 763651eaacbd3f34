# gitlab-scope-proxy container image.
#
#   docker build -t gitlab-scope-proxy .
#
# The image carries no secret and no operator policy. Mount your policies at
# /policies, hand the GitLab token and the JWT key in as files (*_FILE
# variables), and put the audit log on a volume. docs/deploy.md has the whole
# recipe; docker-compose.yml and helm/gitlab-scope-proxy do it for you.
#
# No "# syntax=" line on purpose: it would make BuildKit fetch a frontend image
# from a registry, which air-gapped on-prem builders often cannot reach.

# ---------------------------------------------------------------------------
# deps: runtime dependencies only, exactly as pinned by package-lock.json.
# ---------------------------------------------------------------------------
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev leaves the toolchain out (TypeScript, vitest, eslint and the
# `node` npm package developers use); the base image already is Node 24.
# --ignore-scripts: no runtime dependency needs an install script, and none
# should run during a build.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---------------------------------------------------------------------------
# build: src/*.ts compiled to dist/*.js (`npm run build`). Node 24 could run the
# TypeScript directly, but stripping types at run time costs ~28 MiB of memory
# and ~100 ms of start-up (docs/benchmarks.md). Only dist/ leaves this stage;
# its dev dependencies (TypeScript) do not reach the image.
# ---------------------------------------------------------------------------
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --include=dev --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---------------------------------------------------------------------------
# runtime: the compiled JavaScript. Everything under /app belongs to root and
# is read-only for the service user; the process writes only to mounted volumes.
# ---------------------------------------------------------------------------
FROM node:24-bookworm-slim AS runtime

LABEL org.opencontainers.image.title="gitlab-scope-proxy" \
      org.opencontainers.image.description="Reverse proxy that gives each third-party vendor an audited, allowlisted slice of a GitLab api token" \
      org.opencontainers.image.licenses="MIT"

ENV NODE_ENV=production \
    POLICY_DIR=/policies \
    SQLITE_FILE=/var/lib/gitlab-scope-proxy/state.sqlite

# jemalloc instead of glibc's malloc, returning freed memory to the OS within a
# second: after thousands of slow connections closed, glibc kept ~60 MiB of its
# fragmented heap resident for good (`npm run soak -- --abuse`, docs/operations.md
# "Under abuse"). npm run soak -- --abuse reads these two lines.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libjemalloc2 \
 && rm -rf /var/lib/apt/lists/*
ENV LD_PRELOAD=libjemalloc.so.2 \
    MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0

# A dedicated numeric user, so Kubernetes can verify runAsNonRoot without a
# runAsUser override. /var/log/gitlab-scope-proxy (audit) and /var/lib/gitlab-scope-proxy
# (OAuth state, SQLITE_FILE) are owned by it: a named
# Docker volume mounted there starts with this ownership, so the audit log is
# writable with a read-only root filesystem.
RUN groupadd --system --gid 10001 gsp \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin gsp \
 && mkdir -p /policies /var/log/gitlab-scope-proxy /var/lib/gitlab-scope-proxy \
 && chown 10001:10001 /var/log/gitlab-scope-proxy /var/lib/gitlab-scope-proxy \
 && chmod 0750 /var/log/gitlab-scope-proxy /var/lib/gitlab-scope-proxy

WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY --from=build /app/dist ./dist
# Presets are examples to copy from, not active policies: the operator mounts
# their own policy directory at /policies (POLICY_DIR).
COPY policies/presets ./policies/presets
COPY policies/policy.schema.json ./policies/policy.schema.json

USER 10001:10001

# 8080: the vendor-facing API listener (PORT). 9090: the admin listener
# (ADMIN_PORT: /metrics, /healthz, /readyz) — never publish it to vendors.
EXPOSE 8080 9090

# SIGTERM starts a graceful drain bounded by SHUTDOWN_TIMEOUT_MS (25 s by
# default); give the container runtime a longer stop timeout than that.
STOPSIGNAL SIGTERM

# Slim images have no curl or wget: ask Node itself. The admin listener is
# probed because it speaks plain HTTP even when TLS_CERT_FILE turns the API
# listener into HTTPS. A wildcard ADMIN_HOST is reached through loopback.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const h=process.env.ADMIN_HOST;const a=!h||h==='0.0.0.0'||h==='::'?'127.0.0.1':h;const u='http://'+(a.includes(':')?'['+a+']':a)+':'+(process.env.ADMIN_PORT||'9090')+'/healthz';fetch(u,{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Same command as `npm start` (node dist/cli.js serve), without npm in the way
# of signals. Other subcommands work too:
#   docker run --rm IMAGE check --policies /policies
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve"]
