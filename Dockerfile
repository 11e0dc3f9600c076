# syntax=docker/dockerfile:1
# jitgate's container image. Build from the repository root: docker build -t jitgate .
# Run: docker run -e JITGATE_MASTER_KEY=... -e APP_DB_PASSWORD=... -p 8080:8080 -p 5433:5433 \
#        -v jitgate-data:/var/lib/jitgate jitgate
# (deploy/compose.yaml and deploy/kubernetes/ do this for you.)

# Build stage: the toolchain that better-sqlite3 and libpg-query compile with, the TypeScript and
# the console; then the development dependencies are dropped.
FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY src ./src
COPY web ./web
RUN npm run build && npm prune --omit=dev

# Run stage: Node, the built gateway and its production dependencies; an unprivileged user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    JITGATE_CONFIG=/etc/jitgate/jitgate.yaml
WORKDIR /opt/jitgate
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/bin ./bin
COPY deploy/jitgate.yaml /etc/jitgate/jitgate.yaml
RUN mkdir -p /var/lib/jitgate && chown node:node /var/lib/jitgate
USER node
VOLUME /var/lib/jitgate
EXPOSE 8080 5433
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/jitgate.js"]
# One worker per core of a two-core host; the primary drains them all on SIGTERM.
CMD ["serve", "--workers", "2"]
