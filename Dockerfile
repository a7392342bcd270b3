# syntax=docker/dockerfile:1
# superfasttt-bootstrap image: a one-shot container that runs before the app.
#   docker build -t superfasttt/bootstrap:0.1.0 --build-arg VERSION=0.1.0 .   # package.json's version
#   docker run --rm --env-file client.env superfasttt/bootstrap:0.1.0          # bootstrap (the default)
#   docker run --rm superfasttt/bootstrap:0.1.0 --help
# With no registry in reach, test/image/build.sh makes the two base images here and builds this.
# test/image.test.ts parses this file, checks the rules below, and runs a full bootstrap from the
# runtime stage's file set under the image's Node version: keep them in step.

# Build stage, on the runtime's Debian release (the native argon2 binding is for its glibc). Nothing
# of it reaches the runtime stage. It installs only what the build needs (32 MB to download, not
# 254): the runtime dependencies (bundled into dist/, the argon2 binding copied beside) and esbuild
# at its locked version, the one package build/build.mjs imports; none of the dev dependencies (the
# tests' PostgreSQL binaries, a second Node, TypeScript...).
#   --legacy-peer-deps: not TypeScript either, valibot's optional peer;
#   --save-prod with --no-save: esbuild is a devDependency, which --omit=dev alone would skip;
#     package.json and package-lock.json stay as they are.
# The bundle is the one a full `npm ci` gives, but for supports-color: an optional extra of debug
# (under follow-redirects) that only a dev dependency installs.
FROM node:24-trixie-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN flags="--omit=dev --legacy-peer-deps --no-audit --no-fund --no-update-notifier" \
 && npm ci $flags \
 && npm install $flags --no-save --save-prod \
      "esbuild@$(node -p "require('./package-lock.json').packages['node_modules/esbuild'].version")"
COPY tsconfig.json ./
COPY build ./build
COPY src ./src
COPY migrations ./migrations
RUN npm run build

# Runtime stage: distroless Node 24 LTS (no shell, no npm, no package manager) and dist/ only:
# the bundle, its lazily loaded chunks and the native argon2 binding.
FROM gcr.io/distroless/nodejs24-debian13:nonroot AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="superfasttt-bootstrap" \
      org.opencontainers.image.description="One-shot bootstrap of a superfasttt instance: PostgreSQL schema, migrations, S3 and email checks, super admin" \
      org.opencontainers.image.source="https://github.com/superfasttt/superfasttt-bootstrap" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"
WORKDIR /app
COPY --from=build /src/dist/ /app/
# Writes nothing: runs with a read-only root filesystem (only the termination log is written).
ENV NODE_ENV=production \
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
USER 65532:65532
# --max-semi-space-size=1: a one-shot run needs no large young generation; Node 24's default costs
# ~9 MiB of peak RSS here for no speed (npm run bench with BENCH_NODE_OPTIONS).
# `--`: Node would otherwise take the `--env-file` of `check --env-file PATH` for itself.
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=1", "--", "/app/superfasttt-bootstrap.mjs"]
