# abseal worker image: Debian 13 ships FFmpeg 7.1 (libavcodec 61), so the
# image uses the packaged libraries instead of building FFmpeg.
FROM golang:1.26-trixie AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        pkg-config libavcodec-dev libavdevice-dev libavfilter-dev libavformat-dev \
        libswresample-dev libswscale-dev libavutil-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -o /out/worker ./cmd/worker \
    && CGO_ENABLED=1 go build -trimpath -o /out/enqueue ./cmd/enqueue \
    && CGO_ENABLED=1 go build -trimpath -o /out/edge ./cmd/edge \
    && CGO_ENABLED=1 go build -trimpath -o /out/detect ./cmd/detect \
    && CGO_ENABLED=0 go build -trimpath -o /out/kek ./cmd/kek

FROM debian:trixie-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates curl libavcodec61 libavdevice61 libavfilter10 libavformat61 \
        libswresample5 libswscale8 libavutil59 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /nonexistent abseal
COPY --from=build /out/ /usr/local/bin/
USER abseal
EXPOSE 8080 8443
ENTRYPOINT ["/usr/local/bin/worker"]
