# abseal images. Two targets:
#   worker (the default, last): the worker and the decoding tools, on Debian
#     13, whose packaged FFmpeg 7.1 (libavcodec 61) the worker links with.
#   edge: the delivery edge, enqueue and kek, built without cgo on a small
#     image without FFmpeg (they never decode video).

# The commands that need no FFmpeg, built with CGO_ENABLED=0.
FROM golang:1.26-trixie AS build-static
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/edge ./cmd/edge \
    && CGO_ENABLED=0 go build -trimpath -o /out/enqueue ./cmd/enqueue \
    && CGO_ENABLED=0 go build -trimpath -o /out/kek ./cmd/kek

# The commands that decode or encode video (go-astiav, cgo).
FROM golang:1.26-trixie AS build-cgo
RUN apt-get update && apt-get install -y --no-install-recommends \
        pkg-config libavcodec-dev libavdevice-dev libavfilter-dev libavformat-dev \
        libswresample-dev libswscale-dev libavutil-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -o /out/worker ./cmd/worker \
    && CGO_ENABLED=1 go build -trimpath -o /out/detect ./cmd/detect

FROM debian:trixie-slim AS edge
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /nonexistent abseal
COPY --from=build-static /out/ /usr/local/bin/
USER abseal
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/edge"]

FROM debian:trixie-slim AS worker
RUN apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates curl libavcodec61 libavdevice61 libavfilter10 libavformat61 \
        libswresample5 libswscale8 libavutil59 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /nonexistent abseal
COPY --from=build-static /out/ /usr/local/bin/
COPY --from=build-cgo /out/ /usr/local/bin/
USER abseal
EXPOSE 8080 8443
ENTRYPOINT ["/usr/local/bin/worker"]
