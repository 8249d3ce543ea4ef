# setlist: `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN := bin
# The ALS kernels use AVX2/FMA through Go 1.26's experimental simd package
# (3-7x faster training); other builds fall back to portable Go.
export GOEXPERIMENT ?= simd
# `make run` listens on 127.0.0.1:8080 (loopback: the playground has no
# authentication); SETLIST_ADDR or `make run ADDR=host:port` picks another
# address. Its state is in SETLIST_DATA_DIR (.run/ by default).


.PHONY: lint-api lint-js types check-tools
.PHONY: help build build-batch build-serve build-playground test lint vet check-servers bench bench-import-synth bench-serve bench-serve-cluster run retrain run-prod clean fmt image soak figures-floods

help: ## list the targets
	@if [ -t 1 ] && [ -z "$${NO_COLOR:-}" ]; then on='\033[36m' off='\033[0m'; else on= off=; fi; \
	  awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {n++; name[n] = $$1; doc[n] = $$2; if (length($$1) > w) w = length($$1)} \
	    END {for (i = 1; i <= n; i++) printf "  %s%-" w "s%s %s\n", on, name[i], off, doc[i]}' $(MAKEFILE_LIST)

build: build-batch build-serve ## build bin/batch and bin/serve

# The embedded store's SQLite is C translated to Go (modernc.org/libc and
# modernc.org/sqlite/lib): compiling those two packages with inlining is about
# 55 s of CPU on the cold build's critical path, without it about 18 s.
# build-batch skips it (batch --store embedded imports about 3 s slower);
# production serve does not link SQLite at all. The image (Dockerfile)
# compiles them as usual.
# Figures: docs/BENCHMARKS.md, "Cold build".
SQLITE_GCFLAGS := -gcflags='modernc.org/libc=-l' -gcflags='modernc.org/sqlite/lib=-l'

# make run's binary, bin/serve-playground (./serve/playground: serve plus
# the embedded store, the training pipeline and the sample; production serve
# links none of them), is compiled without inlining anywhere: a fresh
# clone's cold build spends most of its CPU inlining, and the playground's
# few hundred listeners do not need it (its first start takes the same
# 5 s). make build and the image keep the optimised build. Figures:
# docs/BENCHMARKS.md, "Cold build".
PLAYGROUND_GCFLAGS := -gcflags='all=-l'

build-batch:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath $(SQLITE_GCFLAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/batch ./batch

build-serve:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/serve ./serve

check-servers: ## fail loudly unless PostgreSQL and Redis answer (tests need both)
	@bash scripts/check-servers.sh

vet: ## go vet and gofmt
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files --others --exclude-standard '*.go' 2>/dev/null)); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# The static checker, pinned here rather than in go.mod so that its own
# dependencies stay out of the module's; `go run` builds it once per cache.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Packages whose tests also run under the race detector: the concurrent
# serving path and the stores it reads, and none that compiles the pure-Go
# SQLite (instrumenting it costs minutes) or trains ALS for long (4-8x slower
# under -race). Measured in docs/BENCHMARKS.md ("make test's race set").
RACE_PKGS := ./serve/internal/server ./serve/internal/api ./serve/internal/recs ./serve/internal/ratelimit \
	./internal/keyspace ./internal/model ./internal/store ./batch/progress ./internal/npz

lint: lint-api lint-js ## staticcheck, the go.mod tidiness check, the OpenAPI document (redocly) and the page's JS against its types (tsc)
	$(GO) run $(STATICCHECK) ./...
	@$(GO) mod tidy -diff >/dev/null 2>&1 || { echo "go.mod/go.sum are not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }

# The npm tools (tools/package.json, pinned, with its lockfile): .ci/run
# installs them with `npm ci --prefix tools`.
TOOLS := tools/node_modules/.bin
OPENAPI := internal/openapi/openapi.json

check-tools:
	@[ -x $(TOOLS)/redocly ] && [ -x $(TOOLS)/openapi-typescript ] && [ -x $(TOOLS)/tsc ] || { \
	  echo "the npm tools are not installed: run npm ci --prefix tools (Node.js 20+; .ci/run does it)"; exit 1; }

lint-api: check-tools ## validate the OpenAPI document with redocly (a checker this project did not write)
	$(TOOLS)/redocly lint --config tools/redocly.yaml $(OPENAPI)

# The page's API client (web/static/js/api.js, JSDoc-annotated) is
# type-checked against types generated from the document; the committed
# web/types/api.d.ts must be what the document generates (make types).
lint-js: check-tools ## type-check the page's JavaScript against the API's generated types
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  $(TOOLS)/openapi-typescript $(OPENAPI) -o "$$tmp/api.d.ts" >/dev/null 2>&1 || { echo "openapi-typescript failed on $(OPENAPI)"; exit 1; }; \
	  cmp -s "$$tmp/api.d.ts" web/types/api.d.ts || { echo "web/types/api.d.ts is not what $(OPENAPI) generates: run make types"; exit 1; }
	$(TOOLS)/tsc -p web/tsconfig.json

types: check-tools ## regenerate web/types/api.d.ts from the OpenAPI document
	$(TOOLS)/openapi-typescript $(OPENAPI) -o web/types/api.d.ts

test: check-servers vet lint ## run every test against the real PostgreSQL and Redis (the race set under -race)
	$(GO) test -count=1 -timeout 12m $$($(GO) list ./... | grep -vxF "$$($(GO) list $(RACE_PKGS))")
	$(GO) test -race -count=1 -timeout 10m $(RACE_PKGS)

bench: bench-serve ## run the benchmarks (real data in ../shared when present) and print figures
	$(GO) test -run '^$$' -bench . -benchmem -count 3 -timeout 60m ./...

# The 50 M-row synthetic import against a plain COPY of the same rows: too
# long for make bench (about 35 min on 2 busy cores, ~17 GB of disk at peak).
# ROWS, USERS, SONGS and LIMITS: see the script. Figures: docs/BENCHMARKS.md.
bench-import-synth: build-batch check-servers ## the 50 M-row synthetic import vs a plain COPY of the same rows (long; scripts/bench-import-synth.sh)
	BATCH=$(BIN)/batch scripts/bench-import-synth.sh

bench-serve: check-servers ## load-test serve against a bare Fiber+go-redis handler on 127.0.0.1 (wrk on its own core; LOADTEST_ARGS="-only batch,batch+exp -experiment 0.5")
	$(GO) build -o $(BIN)/loadtest ./serve/bench/loadtest
	GOGC=400 taskset -c 0 $(BIN)/loadtest -runs 3 -duration 10s -wrk-cpus 1 -wrk-threads 1 $(LOADTEST_ARGS)

# Not pinned to a core like bench-serve: the cluster's six redis-servers are
# children of the load test and would inherit its pinning (the single Redis
# is not). The prefix is one the current key layout wrote (republished from
# the model's artifact on first use), like the cluster's.
bench-serve-cluster: check-servers ## bench-serve's batch scenarios against the single Redis and a 3-master loopback Redis Cluster, interleaved in one run
	$(GO) build -o $(BIN)/loadtest ./serve/bench/loadtest
	GOGC=400 $(BIN)/loadtest -runs 3 -duration 10s -wrk-cpus 1 -wrk-threads 1 -cluster -redis-prefix setlist-bench-layout2 \
	  -only bare,batch,batch+near,bare@cluster,batch@cluster,batch+near@cluster

figures-floods: check-servers ## other users' fold-ins quiet vs under each read-only flood of issue 24 (serve/bench/figures; figures in docs/BENCHMARKS.md)
	SETLIST_FIGURES=1 $(GO) test -count 1 -v -run '^(TestNoFlood|TestModelReportFlood|TestClientSpreadFlood|TestSimilarFlood|TestSimilarFloodCached)$$' ./serve/bench/figures/

soak: check-servers ## 10 min of mixed load on a real serve (loopback; bounded), then check no write was lost (SOAK_ARGS="-duration 30s")
	$(GO) run ./bench/soak $(SOAK_ARGS)

build-playground:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath $(PLAYGROUND_GCFLAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/serve-playground ./serve/playground

run: build-playground ## start the playground at http://localhost:8080 in one process, no servers needed (state in .run/)
	@SETLIST_SERVE_BIN="$${SETLIST_SERVE_BIN:-$(BIN)/serve-playground}" bash scripts/run.sh

retrain: ## while make run serves: train and publish a new model from its current data, likes included (FORCE=1 past the quality gate)
	@bash scripts/retrain.sh

run-prod: build-playground ## the same against the PostgreSQL and Redis at DATABASE_URL and REDIS_URL
	@SETLIST_STORE=postgres+redis SETLIST_SERVE_BIN="$${SETLIST_SERVE_BIN:-$(BIN)/serve-playground}" bash scripts/run.sh

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

image: ## build the container image setlist:<git describe> (needs a Docker engine; see docs/deploy.md)
	docker build --build-arg VERSION=$(VERSION) -t setlist:$(VERSION) .

clean: ## remove build output
	rm -rf $(BIN)
