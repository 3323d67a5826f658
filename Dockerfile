# syntax=docker/dockerfile:1
# The gateway's image: the npm package is built and packed in a build stage and installed
# alone in the runtime stage (no sources, no dev dependencies, no compiler), running as
# the image's unprivileged `node` user. Node 22 has node:sqlite, so the SQLite store needs
# no native addon. docs/deployment.md tells how to run it.
#
#   docker build -t responses-gateway .
#   docker build --target simulated-vllm -t responses-gateway-sim .   # the simulated vLLM (compose.yaml)
ARG NODE_VERSION=22

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json README.md ARCHITECTURE.md ./
COPY bin ./bin
COPY src ./src
RUN npm run build && mkdir /pkg && npm pack --ignore-scripts --pack-destination /pkg

# The simulated vLLM of the tests and the demo, for trying a deployment without a GPU.
FROM build AS simulated-vllm
COPY sim ./sim
USER node
EXPOSE 8000
ENTRYPOINT ["node", "--import", "tsx", "sim/cli.ts", "--host", "0.0.0.0", "--port", "8000", "--no-record"]

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production
RUN --mount=type=bind,from=build,source=/pkg,target=/pkg \
    npm install --global --omit=dev --no-audit --no-fund /pkg/responses-gateway-*.tgz \
    && npm cache clean --force
USER node
WORKDIR /home/node
# The default SQLite store lives here; mount a volume to keep it, or use PostgreSQL.
VOLUME ["/home/node/.responses-gateway"]
EXPOSE 9000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.GATEWAY_PORT || 9000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["responses-gateway"]
