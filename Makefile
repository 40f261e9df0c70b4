# abseal — build, set-up and test entry points. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export PATH := /usr/local/go/bin:$(PATH)
export PKG_CONFIG_PATH := /usr/local/lib/pkgconfig:$(PKG_CONFIG_PATH)
export CGO_ENABLED := 1
export GOFLAGS := -buildvcs=false

# Pinned tool versions. The MinIO server is installed with go install from the
# Go module proxy (its tags are not semver, so the pin is the pseudo-version).
MINIO_VERSION ?= v0.0.0-20260212201848-7aac2a2c5b7c
STATICCHECK_VERSION ?= v0.8.2
TOOLS := $(CURDIR)/.tools
GO_TEST_FLAGS ?=
BENCH_OUT := bench/out

.PHONY: help demo compose-secrets deps deps-ffmpeg deps-minio deps-go deps-staticcheck deps-web test vet lint cgo-free unit bench wm-report forensic-sim fuzz clean-tools

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

SOURCE ?= testdata/sample.mp4
DEMO_DATA ?= .abseal-dev

demo: deps ## process SOURCE (default: the sample) end to end on embedded NATS + local MinIO and print a summary
	@if [ "$(SOURCE)" = testdata/sample.mp4 ]; then testdata/make-clips.sh testdata sample.mp4; fi
	go build -o $(TOOLS)/bin/abseal-worker ./cmd/worker
	$(TOOLS)/bin/abseal-worker --dev --data-dir $(DEMO_DATA) --log-level warn --demo $(SOURCE)

compose-secrets: ## create deploy/secrets (KEK, watermark and token keys, MinIO and NATS users) and .env for docker-compose, once
	@scripts/compose-secrets.sh deploy/secrets .env

deps: deps-ffmpeg deps-minio deps-go deps-staticcheck deps-web ## install everything the build and tests need (idempotent)

deps-ffmpeg: ## FFmpeg 7.1 shared libraries + ffmpeg/ffprobe (system's, or built from Debian 13's source)
	@scripts/deps-ffmpeg.sh

deps-minio: ## the pinned MinIO server binary into .tools/bin
	@MINIO_VERSION=$(MINIO_VERSION) ABSEAL_TOOLS_DIR=$(TOOLS) scripts/deps-minio.sh

deps-web: ## Chromium, nginx and the web players (web/package-lock.json) for the browser and CDN tests
	@scripts/deps-web.sh

deps-go: ## Go modules
	@echo "deps/go: go mod download"
	@go mod download

deps-staticcheck:
	@if [ -x $(TOOLS)/bin/staticcheck ] && [ "$$(cat $(TOOLS)/staticcheck.version 2>/dev/null)" = "$(STATICCHECK_VERSION)" ]; then \
		echo "deps/staticcheck: $(STATICCHECK_VERSION) already installed"; \
	else \
		echo "deps/staticcheck: go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)"; \
		GOBIN=$(TOOLS)/bin go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) && \
		echo $(STATICCHECK_VERSION) > $(TOOLS)/staticcheck.version; \
	fi

vet: ## go vet + staticcheck
	go vet ./...
	$(TOOLS)/bin/staticcheck ./...

# The commands that never decode video build without cgo (and so without
# FFmpeg's libraries): the edge, enqueue and kek.
CGO_FREE := ./cmd/edge ./cmd/enqueue ./cmd/kek
cgo-free: ## build the edge, enqueue and kek with CGO_ENABLED=0 and check none depends on go-astiav
	CGO_ENABLED=0 go build -o /dev/null $(CGO_FREE)
	@if go list -deps $(CGO_FREE) | grep -q go-astiav; then echo "cgo-free: go-astiav in the deps of $(CGO_FREE)"; exit 1; fi
	@echo "cgo-free: $(CGO_FREE) build with CGO_ENABLED=0, no go-astiav"

# The detection tests are long single-threaded arithmetic (watermark/,
# detect/ and cmd/detect start no goroutines): under the race detector they
# ran 7x slower (21 of make test's 28 minutes) and checked nothing more, so
# they run once without it; everything else runs with it.
SLOW_DETECT := ^(TestDetect|TestDetectLeak|TestDetectFromBucket|TestRegistration|TestTiming|TestHandheld|TestAccuseFromBucket|TestFourColluders|TestStalledWorker|TestChunkedDetect)$$
unit: ## the test suite (real NATS, MinIO and FFmpeg), with the race detector
	go test -race -count=1 -timeout 25m -skip '$(SLOW_DETECT)' $(GO_TEST_FLAGS) ./...
	go test -count=1 -timeout 25m -run '$(SLOW_DETECT)' $(GO_TEST_FLAGS) ./watermark ./cmd/detect

test: deps vet cgo-free unit ## install what is missing, vet, build the cgo-free commands, and run all tests

bench: deps ## benchmarks (envelope vs raw AES-GCM, MinIO, ladder vs ffmpeg CLI, marked A/B job vs ffmpeg CLI, job overhead, jobs/hour, chunked jobs, edge load, accusing 10⁶ sessions); writes bench/out/report.md
	@mkdir -p $(BENCH_OUT)
	go test -run '^$$' -bench . -benchtime 3s -count 3 ./envelope ./storage/... | tee $(BENCH_OUT)/bench.txt
	go test -run '^$$' -bench LadderVsFFmpeg -benchtime 1x -timeout 60m ./transcode | tee -a $(BENCH_OUT)/bench.txt
	go test -run '^$$' -bench EmbedShareOfEncode -benchtime 1x -timeout 30m ./pipeline | tee -a $(BENCH_OUT)/bench.txt
	go test -run '^$$' -bench MarkedVsFFmpeg -benchtime 1x -timeout 60m -v ./cmd/worker | tee -a $(BENCH_OUT)/bench.txt
	go test -run '^$$' -bench 'JobOverhead|JobsPerHour' -benchtime 1x -timeout 60m ./cmd/worker | tee -a $(BENCH_OUT)/bench.txt
	go test -run '^$$' -bench Chunked -benchtime 1x -timeout 90m -v ./cmd/worker | tee -a $(BENCH_OUT)/bench.txt
	go test -run '^$$' -bench 'EdgeLoad|CDNShape' -benchtime 1x -timeout 10m ./cmd/edge | tee -a $(BENCH_OUT)/bench.txt
	go test -run '^$$' -bench Accuse -benchtime 1x -timeout 10m ./forensic | tee -a $(BENCH_OUT)/bench.txt
	@scripts/bench-report.sh $(BENCH_OUT)/bench.txt | tee $(BENCH_OUT)/report.md

# WM_RESUME=1 keeps bench/out/wm-work: the defaults section then skips the
# trials an interrupted run of the same build finished.
wm-report: deps ## watermark robustness at the defaults and fast, quality and the strength trade-off (hours); writes bench/out/wm-report.md
	@mkdir -p $(BENCH_OUT)
	@if [ "$(WM_RESUME)" != 1 ]; then rm -rf $(BENCH_OUT)/wm-work; fi
	set -o pipefail; go run ./cmd/wmreport --workdir $(BENCH_OUT)/wm-work | tee $(BENCH_OUT)/wm-report.md

forensic-sim: deps-go ## simulated accusation with the session code: segments needed per colluder count and strategy, innocents accused (minutes); writes bench/out/forensic-sim.md
	@mkdir -p $(BENCH_OUT)
	set -o pipefail; go run ./cmd/forensicsim | tee $(BENCH_OUT)/forensic-sim.md

FUZZTIME ?= 5m
fuzz: deps-go ## run the fuzzers one at a time (FUZZTIME each, default 5m); their seed corpora in testdata/fuzz run with every go test
	go test -run '^$$' -fuzz FuzzOpen -fuzztime $(FUZZTIME) ./envelope
	go test -run '^$$' -fuzz FuzzVerify -fuzztime $(FUZZTIME) ./delivery
	go test -run '^$$' -fuzz '^FuzzDecodeJob$$' -fuzztime $(FUZZTIME) ./asset
	go test -run '^$$' -fuzz '^FuzzDecodeManifest$$' -fuzztime $(FUZZTIME) ./asset
	go test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./asset
	go test -run '^$$' -fuzz FuzzParseEvent -fuzztime $(FUZZTIME) ./queue
	go test -run '^$$' -fuzz FuzzParsePaceInfo -fuzztime $(FUZZTIME) ./cmaf

clean-tools: ## remove .tools (FFmpeg in /usr/local stays)
	rm -rf $(TOOLS)
