# syntax=docker/dockerfile:1
# Lockstep operator image: compiled in a Node build image, run on distroless (no shell, no package
# manager) as UID 65532, matching the Deployment's runAsUser and readOnlyRootFilesystem.
# Node 24 LTS, the major package.json's engines asks for (scripts/lint-kind.ts checks both stages).
# Pin by digest in release builds (--build-arg BUILD_IMAGE=node:24-bookworm-slim@sha256:...).
# RUNTIME_IMAGE must stay a distroless nodejs image: the entrypoint below is its node binary.
ARG BUILD_IMAGE=node:24-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot
# OCI labels, the same as `make image` writes (scripts/lint-kind.ts keeps the two in step).
# `make docker-image` passes these from package.json and git; SOURCE_DATE_EPOCH-style CREATED.
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z

FROM ${BUILD_IMAGE} AS build
WORKDIR /app
# pkcs11js (the PKCS#11 KEK backend) is a native addon built by `npm ci`: node-gyp needs a C++
# toolchain, and compiles against this image's own Node headers (/usr/local/include/node) instead
# of downloading them. The addon links only libc and libstdc++, which the distroless runtime has.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local
# Dependencies first, so source edits reuse the cached install layer.
COPY package.json package-lock.json ./
# --omit=optional: the node-linux-* binaries package.json pins for npm scripts; this image has its own Node.
RUN npm ci --omit=optional --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY operator ./operator
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

FROM ${RUNTIME_IMAGE} AS runtime
ARG RUNTIME_IMAGE
ARG VERSION
ARG REVISION
ARG CREATED
LABEL org.opencontainers.image.title="lockstep-operator" \
      org.opencontainers.image.description="Kubernetes operator: services encrypted end to end, keys and certificates that rotate themselves" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/lockstep-dev/lockstep" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Lockstep" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}"
WORKDIR /app
ENV NODE_ENV=production
# package.json carries "type": "module", which Node needs to load dist/ as ES modules.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER 65532:65532
EXPOSE 8080
# Distroless has no `node` on PATH: its own entrypoint is /nodejs/bin/node. Naming the binary here
# (instead of relying on the base image's ENTRYPOINT plus a CMD) keeps `docker run IMAGE --flag`
# passing flags to the operator rather than replacing the script.
# --max-semi-space-size=2: V8 otherwise grows the young generation to 3 x 16 MiB and keeps it,
# a third of the operator's RSS (docs/scale.md).
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=2", "dist/operator/main.js"]
