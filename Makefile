# Kiln — build, run and test.
#   make run    build and start `kiln server` on the embedded defaults
#   make test   set up everything the tests need and run every test
SHELL := /bin/bash
GO ?= go
BIN := bin/kiln
VENV := .venv
PY := $(VENV)/bin/python
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
VERSITYGW := bin/versitygw
FAKEGCS := bin/fake-gcs-server
AZURITE := bin/azurite/node_modules/.bin/azurite-blob
# Short fuzzing in `make test` counts executions rather than seconds: a time
# budget makes `go test -fuzz` fail with "context deadline exceeded" when an
# execution (an HTTP request to a test server) is in flight as it ends.
FUZZTIME ?= 3000x
export PATH := $(CURDIR)/bin:$(PATH)

.PHONY: all build run test typecheck go-test ort-test cross compat-test fuzz-short fuzz lint venv tools bench bench-serving bench-data bench-deploy bench-monitor bench-ui ui-test demo docs clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kiln

run: build
	./$(BIN) server

# The Python virtualenv with the pinned packages of the compatibility suites.
venv: $(VENV)/.stamp
$(VENV)/.stamp: tests/compat/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r tests/compat/requirements.txt
	touch $@

# A real S3-compatible server for the artifact tests.
$(VERSITYGW):
	GOBIN=$(CURDIR)/bin $(GO) install github.com/versity/versitygw/cmd/versitygw@v1.8.0

# A Google Cloud Storage emulator (the JSON API) for the gs:// driver's tests;
# the version is blobtest.FakeGCSVersion.
$(FAKEGCS):
	GOBIN=$(CURDIR)/bin $(GO) install github.com/fsouza/fake-gcs-server@v1.56.1

# Azurite, Azure Storage's emulator, for the azblob:// driver's tests; the
# version is blobtest.AzuriteVersion.
$(AZURITE):
	npm install --prefix bin/azurite --no-save --no-audit --no-fund --loglevel=error azurite@3.37.0

# The generated references: docs/cli (the command tree) and docs/api.md
# (api/openapi.yaml); their tests fail when they are stale.
docs: build
	./$(BIN) docs cli --dir docs/cli
	./$(BIN) docs api --out docs/api.md

# The closed loop end to end on the embedded defaults, narrated, in a few
# minutes; leaves the server running (./kiln-demo) to browse in the UI.
demo: build venv
	scripts/demo.sh

# playwright-core for the browser tests of the web UI (tests/ui), pinned
# in its package-lock.json; the browser is Debian's chromium.
UI_NODE := tests/ui/node_modules/.stamp
$(UI_NODE): tests/ui/package.json tests/ui/package-lock.json
	cd tests/ui && npm ci --no-audit --no-fund --loglevel=error
	touch $@

tools: venv $(VERSITYGW) $(FAKEGCS) $(AZURITE) $(UI_NODE)

# The Python SDK is typed: mypy --strict (settings in sdk/python/pyproject.toml)
# against the pinned test virtualenv.
typecheck: venv
	cd sdk/python && ../../$(PY) -m mypy src/kiln

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Every test: Go unit and store tests (SQLite and, when available, a throwaway
# PostgreSQL started by scripts/postgres.sh and Redis by scripts/redis.sh),
# short fuzzing, then the MLflow client compatibility suite against a freshly
# built server.
test: build tools lint typecheck
	@set -e; \
	if [ -z "$$KILN_TEST_POSTGRES" ]; then \
	  KILN_TEST_POSTGRES=$$(scripts/postgres.sh start) || { echo "PostgreSQL unavailable: its tests will be skipped (fail under CI=true)"; KILN_TEST_POSTGRES=; }; \
	fi; \
	export KILN_TEST_POSTGRES; \
	if [ -z "$$KILN_TEST_REDIS" ]; then \
	  KILN_TEST_REDIS=$$(scripts/redis.sh start) || { echo "Redis unavailable: its tests will be skipped (fail under CI=true)"; KILN_TEST_REDIS=; }; \
	fi; \
	export KILN_TEST_REDIS; \
	$(GO) test -count=1 ./...; \
	$(MAKE) --no-print-directory ort-test cross fuzz-short; \
	$(PY) -m pytest tests/compat sdk/python/tests -q -p no:cacheprovider; \
	$(MAKE) --no-print-directory ui-test

# The web UI in headless Chromium (Debian's chromium; CHROMIUM=path for
# another): every page against a seeded server, screenshots in
# tests/ui/artifacts. KILN_UI_ONLY=models runs one area.
ui-test: build venv $(UI_NODE)
	cd tests/ui && PYTHON=$(CURDIR)/$(PY) node --test-reporter=spec run.mjs

go-test:
	$(GO) test ./...

# The optional onnxruntime backend (cgo, build tag `ort`) against the shared
# library of the pinned onnxruntime wheel in the virtualenv.
ort-test: venv
	$(GO) vet -tags ort ./runtime/ort ./cmd/kiln
	$(GO) test -count=1 -tags ort ./runtime/ort
	$(GO) test -tags ort -run '^$$' -fuzz '^FuzzReadGraph$$' -fuzztime $(FUZZTIME) ./runtime/ort

# The runtimes are pure Go: the binary cross-compiles without cgo, and the
# runtime packages build for WebAssembly.
cross:
	CGO_ENABLED=0 GOARCH=arm64 $(GO) build ./...
	CGO_ENABLED=0 GOOS=wasip1 GOARCH=wasm $(GO) build ./tensor/... ./runtime/...

compat-test: build tools
	$(PY) -m pytest tests/compat sdk/python/tests -q -p no:cacheprovider

# Each fuzz target for FUZZTIME (a few thousand executions in `make test`; `make fuzz` runs long).
fuzz-short:
	@scripts/fuzz.sh $(FUZZTIME)

fuzz:
	@scripts/fuzz.sh $${FUZZTIME:-2m}

bench:
	bench/tracking/run.sh

# kiln serve against mlflow models serve and a trivial Go handler (bench/README.md).
bench-serving:
	bench/serving/run.sh

# kiln data against dvc add + dvc push, b3sum/sha256sum and pandas (bench/README.md).
bench-data:
	bench/data/run.sh

# Endpoint routing overhead against kiln serve, and kiln score against
# mlflow models predict (bench/README.md).
bench-deploy:
	bench/deploy/run.sh

# Drift against Evidently's DataDriftPreset, prediction logging on versus
# off, and sustained logging (bench/README.md).
bench-monitor: build venv
	bench/monitor/drift/run.sh
	bench/monitor/logging/run.sh

# The run table of 100,000 runs in Chromium: Kiln's UI against MLflow's (bench/README.md).
bench-ui: build venv $(UI_NODE)
	bench/ui/run.sh

clean:
	rm -rf bin $(VENV) kiln-data tests/ui/node_modules tests/ui/artifacts
