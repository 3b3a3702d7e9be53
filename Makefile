# Artemis — make help lists the targets.
#
# Knobs (override on the command line, e.g. make run ADDR=127.0.0.1:9090):
#   ADDR      listen address of make run            (127.0.0.1:8080)
#   ARGS      extra flags for artemis server         ()
#   COUNT     benchmark repetitions                  (1; bench-compare uses 10)
#   BENCH     benchmark name regexp                  (.)
#   BENCHTIME per-benchmark time                     (1s)
#   BASE      git revision bench-compare compares to (HEAD~1)
#   FUZZTIME  time per fuzz target in make fuzz      (10s)

SHELL       := /bin/bash
GO          ?= go
ADDR        ?= 127.0.0.1:8080
ARGS        ?=
COUNT       ?= 1
BENCH       ?= .
BENCHTIME   ?= 1s
BASE        ?= HEAD~1
FUZZTIME    ?= 10s

VERSION     := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
TOOLS       := $(CURDIR)/.tools/bin
BENCHSTAT   := $(TOOLS)/benchstat
# Pinned tool versions, installed from the Go module proxy.
BENCHSTAT_PKG := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-15s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/artemis
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/artemis ./cmd/artemis

.PHONY: run
run: build ## run an in-memory registry node on ADDR
	./bin/artemis server --addr $(ADDR) $(ARGS)

.PHONY: test
test: vet fmt-check ## vet, gofmt check, tests (with allocation gates) and tests under -race
	$(GO) test -count=1 ./...
	$(GO) test -race -count=1 ./...

.PHONY: test-race
test-race: ## tests under the race detector only
	$(GO) test -race -count=1 ./...

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in ./core ./server; do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test $$pkg -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME); \
	  done; done

.PHONY: bench
bench: ## run all benchmarks (core sizes 1e3..1e6, handlers, loopback round trips)
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -count $(COUNT) ./...

.PHONY: bench-compare
bench-compare: $(BENCHSTAT) ## benchstat of BASE vs the work tree, -count=10 (BENCH, BENCHTIME)
	@set -e; tmp=$$(mktemp -d); trap 'git worktree remove --force $$tmp/base >/dev/null 2>&1; rm -rf $$tmp' EXIT; \
	git worktree add --detach $$tmp/base $(BASE) >/dev/null; \
	(cd $$tmp/base && $(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -count 10 ./... > $$tmp/old.txt); \
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -count 10 ./... > $$tmp/new.txt; \
	$(BENCHSTAT) base=$$tmp/old.txt new=$$tmp/new.txt

$(BENCHSTAT):
	GOBIN=$(TOOLS) $(GO) install $(BENCHSTAT_PKG)

.PHONY: tools
tools: $(BENCHSTAT) ## install the pinned tools into .tools/bin

.PHONY: fmt
fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')

.PHONY: fmt-check
fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

.PHONY: vet
vet: ## go vet
	$(GO) vet ./...

.PHONY: clean
clean: ## remove build outputs
	rm -rf bin
