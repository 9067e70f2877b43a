# presencehub: one container beside the PBX. Build: docker build -t presencehub .
# Every step here is mirrored by .ci/docker-build, which CI runs (no Docker engine there).

# --- build: cgo is needed by github.com/mattn/go-sqlite3 ---
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The build context has no .git (.dockerignore): the version comes from a build argument,
# e.g. docker build --build-arg VERSION=$(git describe --tags --always) -t presencehub .
ARG VERSION=dev
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w -X main.buildVersion=${VERSION}" -o /out/presencehub ./cmd/presencehub

# --- runtime: small, non-root ---
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /data presencehub \
 && mkdir -p /data && chown presencehub:presencehub /data
COPY --from=build /out/presencehub /usr/local/bin/presencehub
USER presencehub
WORKDIR /data
# All configuration is by PRESENCEHUB_* variables (see README); these are the container defaults.
ENV PRESENCEHUB_HTTP_ADDR=0.0.0.0:8080 \
    PRESENCEHUB_DB=/data/presencehub.db \
    PRESENCEHUB_LOG_FORMAT=json
# The database and the generated JWT secret (presencehub.key) live here.
VOLUME ["/data"]
# 8080: HTTP (/ws, console, /metrics); 5060: plain SIP for PBXs when PRESENCEHUB_SIP_ADDR is set.
EXPOSE 8080 5060/udp 5060/tcp
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s CMD ["presencehub", "healthcheck"]
ENTRYPOINT ["presencehub"]
