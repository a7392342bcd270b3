# syntax=docker/dockerfile:1
# Build stage: install with dev dependencies, bundle into dist/.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY build ./build
COPY src ./src
COPY migrations ./migrations
RUN npm run build

# Runtime stage: only the bundle and its native argon2 binding, on a distroless Node LTS (no shell, no npm).
FROM gcr.io/distroless/nodejs24-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="superfasttt-bootstrap" \
      org.opencontainers.image.description="One-shot bootstrap of a superfasttt instance" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"
WORKDIR /app
COPY --from=build /src/dist/ /app/
USER nonroot
ENTRYPOINT ["/nodejs/bin/node", "/app/superfasttt-bootstrap.mjs"]
CMD ["bootstrap"]
