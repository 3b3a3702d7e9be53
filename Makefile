# Artemis — make help lists the targets.
#
# Knobs (override on the command line, e.g. make run ADDR=127.0.0.1:9090):
#   ADDR      listen address of make run            (127.0.0.1:8080)
#   ARGS      extra flags for artemis server         ()
#   COUNT     benchmark repetitions of make bench    (1; bench-compare and
#             bench-record use 10)
#   BENCH     benchmark name regexp                  (.)
#   BENCHTIME per-benchmark time                     (1s; also bench-record)
#   BASE      git revision bench-compare compares to (HEAD~1)
#   REV       git revision bench-record measures, exported clean (empty: the
#             work tree)
#   FUZZTIME  time per fuzz target in make fuzz      (10s)
#   FUZZMINIMIZETIME  -fuzzminimizetime of make fuzz (0: new inputs are not
#             minimised; minimising one of the JSON seeds' mutants takes
#             seconds, so short runs spent their whole budget on it; try 60s,
#             go's default, for long runs)
#   FUZZCACHE fuzz cache directory of make fuzz    (GOCACHE/fuzz; CI: a fresh
#             temp dir, so every run starts from an empty cache)
#   FUZZMINEXECS  make fuzz fails a target that ran fewer times in each of
#             FUZZTRIES (2) tries, each from its own fuzz cache (0: no check)
#   SCENARIO  load-test / profile scenario           (mixed)
#   RATE      requests per second of load tests      (2000)
#   DURATION  seconds of a load test                 (60; make churn: 600)
#   INSTANCES seeded instances                       (100000)
#   ROUNDS    alternating registry/no-op segments of make loadtest (6)
#   SUBSCRIBERS WebSocket subscribers of loadtest-push (1000)
#   WS_LIBRARY  server WebSocket library of loadtest-push (gobwas; or gorilla)
#   SERVER_CPUS / GEN_CPUS  taskset pinning of server and generator
#             (on 2+ cores: server on core 0, generator on the rest)
#   PAIRS     registry/no-op pairs of heartbeat-vs-noop (3); DURATION is
#             10 s per run there unless set on the command line
#   MIN_RATIO the median ratio heartbeat-vs-noop must meet (0.9; 0: report only)

SHELL       := /bin/bash
GO          ?= go
ADDR        ?= 127.0.0.1:8080
ARGS        ?=
COUNT       ?= 1
BENCH       ?= .
BENCHTIME   ?= 1s
BASE        ?= HEAD~1
REV         ?=
FUZZTIME    ?= 10s
FUZZMINIMIZETIME ?= 0
FUZZCACHE   ?=
FUZZMINEXECS ?= 0
FUZZTRIES   ?= 2
SCENARIO    ?= mixed
RATE        ?= 2000
DURATION    ?= 60
INSTANCES   ?= 100000
ROUNDS      ?= 6
SUBSCRIBERS ?= 1000
WS_LIBRARY  ?= gobwas
PAIRS       ?= 3
MIN_RATIO   ?= 0.9
NPROC       := $(shell nproc 2>/dev/null || echo 1)
TASKSET     := $(shell command -v taskset 2>/dev/null)
ifeq ($(shell [ $(NPROC) -ge 2 ] && [ -n "$(TASKSET)" ] && echo yes),yes)
SERVER_CPUS ?= 0
GEN_CPUS    ?= 1-$(shell echo $$(($(NPROC)-1)))
GEN_PIN     := taskset -c $(GEN_CPUS)
endif

VERSION     := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
TOOLS       := $(CURDIR)/.tools/bin
BENCHSTAT   := $(TOOLS)/benchstat
# Pinned tool versions, installed from the Go module proxy.
BENCHSTAT_PKG := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
VEGETA      := $(TOOLS)/vegeta
VEGETA_PKG  := github.com/tsenart/vegeta/v12@v12.13.0
STAMP        = $(shell date -u +%Y%m%dT%H%M%SZ)

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
fuzz: ## run every fuzz target (each func Fuzz* in a _test.go) for FUZZTIME; prints "fuzz-execs: PKG TARGET N" per target
	@set -eo pipefail; log=$$(mktemp); trap 'rm -f $$log' EXIT; \
	files=$$(git ls-files --cached --others --exclude-standard '*_test.go' | xargs grep -l '^func Fuzz'); \
	for dir in $$(dirname $$files | sort -u); do \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$dir/*_test.go | sort); do \
	    for try in $$(seq $(FUZZTRIES)); do \
	      echo "== ./$$dir $$t"; \
	      $(GO) test ./$$dir -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) \
	        $(if $(FUZZCACHE),-test.fuzzcachedir=$(FUZZCACHE)/$$try/$$dir) 2>&1 | tee $$log; \
	      n=$$(sed -n 's/.*execs: \([0-9]*\).*/\1/p' $$log | tail -1); \
	      echo "fuzz-execs: ./$$dir $$t $${n:-0}"; \
	      [ "$${n:-0}" -lt $(FUZZMINEXECS) ] || break; \
	      echo "fuzz: $$t ran $${n:-0} times in $(FUZZTIME); want at least $(FUZZMINEXECS) (try $$try of $(FUZZTRIES))"; \
	      [ $$try -lt $(FUZZTRIES) ] || exit 1; \
	    done; \
	  done; \
	done

# The microbenchmarks results/README.md records, -count 10 each: the
# concurrent paths per call (-cpu 1) and on two cores (-cpu 2, ns/op is the
# inverse of throughput), the serial ones on two cores; BenchmarkCalibration
# runs with the first, and each core benchmark has its RWMutex-map baseline.
RECORD_CORE_PAR := ^Benchmark(Heartbeat|ServiceLookup|RegisterUnregister|Calibration)$$
RECORD_CORE_SER := ^BenchmarkRegister$$
RECORD_SERVER   := ^BenchmarkHandler
RECORD_PUSH     := ^BenchmarkLoopbackWrite$$

.PHONY: bench-record
bench-record: $(BENCHSTAT) ## the recorded microbenchmarks (-count 10, -cpu 1,2) of REV (a clean export) or the work tree; raw output and benchstat to results/bench/
	@set -eo pipefail; src=.; c=$$(git describe --always --dirty); \
	if [ -n "$(REV)" ]; then src=$$(mktemp -d); trap 'rm -rf $$src' EXIT; c=$$(git rev-parse --short $(REV)); \
	  git archive $(REV) | tar -x -C $$src; fi; \
	out=results/bench/$(STAMP)-$$c; mkdir -p results/bench; \
	{ echo "commit: $$c"; echo "go: $$($(GO) env GOVERSION)"; echo "nproc: $$(nproc)"; \
	  echo "cpu-model: $$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"; \
	  echo "loadavg-before: $$(cut -d' ' -f1-3 /proc/loadavg)"; \
	  cd $$src; \
	  $(GO) test ./core -run '^$$' -bench '$(RECORD_CORE_PAR)' -benchtime $(BENCHTIME) -count 10 -cpu 1,2; \
	  $(GO) test ./core -run '^$$' -bench '$(RECORD_CORE_SER)' -benchtime $(BENCHTIME) -count 10 -cpu 2; \
	  $(GO) test ./core -run '^$$' -bench '^BenchmarkMemoryPerInstance$$' -benchtime 1x -count 10 -cpu 2; \
	  $(GO) test ./server -run '^$$' -bench '$(RECORD_SERVER)' -benchtime $(BENCHTIME) -count 10 -cpu 1,2; \
	  $(GO) test ./benchmarks -run '^$$' -bench '$(RECORD_PUSH)' -benchtime $(BENCHTIME) -count 10 -cpu 2; \
	  echo "loadavg-after: $$(cut -d' ' -f1-3 /proc/loadavg)"; } 2>&1 | tee $$out.txt; \
	$(BENCHSTAT) $$out.txt | tee $$out-benchstat.txt

.PHONY: bench-compare
bench-compare: $(BENCHSTAT) ## benchstat of BASE vs the work tree, -count=10 (BENCH, BENCHTIME)
	@set -e; tmp=$$(mktemp -d); trap 'git worktree remove --force $$tmp/base >/dev/null 2>&1; rm -rf $$tmp' EXIT; \
	git worktree add --detach $$tmp/base $(BASE) >/dev/null; \
	(cd $$tmp/base && $(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -count 10 ./... > $$tmp/old.txt); \
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -count 10 ./... > $$tmp/new.txt; \
	$(BENCHSTAT) base=$$tmp/old.txt new=$$tmp/new.txt

$(BENCHSTAT):
	GOBIN=$(TOOLS) $(GO) install $(BENCHSTAT_PKG)

$(VEGETA):
	GOBIN=$(TOOLS) $(GO) install $(VEGETA_PKG)

.PHONY: tools
tools: $(BENCHSTAT) $(VEGETA) ## install the pinned tools (benchstat, vegeta CLI) into .tools/bin

LOADTEST = $(GEN_PIN) ./bin/artemis loadtest -server-cpus '$(SERVER_CPUS)'

.PHONY: loadtest
loadtest: build ## headline run: INSTANCES seeded, SCENARIO at RATE for DURATION s, with its no-op twin; recorded in results/
	$(LOADTEST) -instances $(INSTANCES) -scenario $(SCENARIO) -rate $(RATE) -duration $(DURATION)s -rounds $(ROUNDS)

# DURATION defaults to 60 for the vegeta targets; this one runs 10 s per run
# unless DURATION is given on the command line.
HBVSNOOP_DURATION = $(if $(filter command line,$(origin DURATION)),$(DURATION),10)

.PHONY: heartbeat-vs-noop
heartbeat-vs-noop: build ## wrk (-t1 -c32, DURATION=10 s a run) of one-instance heartbeats over INSTANCES, registry vs its Hertz no-op twin in PAIRS alternating pairs; report to results/heartbeat-vs-noop/
	@if ! command -v wrk >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }; \
	  else echo "wrk is not installed: install Debian's wrk package (sudo apt-get install -y wrk), then run make heartbeat-vs-noop again"; exit 1; fi; \
	fi
	@mkdir -p bin && $(GO) build -o bin/heartbeat-vs-noop ./loadtest/cmd/heartbeat-vs-noop
	HBVSNOOP_COMMAND='make heartbeat-vs-noop INSTANCES=$(INSTANCES) PAIRS=$(PAIRS) DURATION=$(HBVSNOOP_DURATION)' \
	  ./bin/heartbeat-vs-noop -bin bin/artemis -instances $(INSTANCES) -conns 32 -threads 1 -duration $(HBVSNOOP_DURATION)s \
	  -pairs $(PAIRS) -min-ratio $(MIN_RATIO) -server-cpus '$(SERVER_CPUS)' -gen-cpus '$(GEN_CPUS)' -rev $(VERSION)

.PHONY: loadtest-findmax
loadtest-findmax: build ## -find-max (P99 < 10ms) of SCENARIO on the registry and on the no-op twin; recorded
	$(LOADTEST) -instances $(INSTANCES) -scenario $(SCENARIO) -rate $(RATE) -find-max -step 10s

.PHONY: loadtest-seed
loadtest-seed: build ## seed INSTANCES (try 1000000) in batches of 1000 and record rate, RSS and service.json latency
	$(LOADTEST) -instances $(INSTANCES) -services $$(($(INSTANCES)/100)) -seed-only

.PHONY: loadtest-push
loadtest-push: build ## push latency (SUBSCRIBERS on one service, 10 changes/s, 20 s) beside its no-op twin, then 10,000 idle sessions; recorded
	$(LOADTEST) -scenario push -subscribers $(SUBSCRIBERS) -rate 10 -duration 20s -ws-library $(WS_LIBRARY)
	$(LOADTEST) -scenario idle-ws -idle-conns 10000 -ws-library $(WS_LIBRARY)

.PHONY: soak
soak: build ## 10 minutes of mixed load at 5,000 req/s on 100k instances; RSS and goroutines before and after, recorded
	$(LOADTEST) -instances 100000 -scenario mixed -rate 5000 -duration 600s -noop=false -label soak

# make churn runs 600 s unless DURATION is given on the command line (the
# vegeta targets' default of 60 s is too short to see a trend).
CHURN_DURATION = $(if $(filter command line,$(origin DURATION)),$(DURATION),600)

.PHONY: churn
churn: build ## INSTANCES (100k) seeded, 10 % of them replaced by new ids every minute for DURATION (600 s); node RSS, Go heap, record arenas sampled every 10 s; report to results/churn/
	@mkdir -p bin && $(GO) build -o bin/churn-rss ./loadtest/cmd/churn-rss
	CHURN_COMMAND='make churn INSTANCES=$(INSTANCES) DURATION=$(CHURN_DURATION)' \
	  $(GEN_PIN) ./bin/churn-rss -bin bin/artemis -instances $(INSTANCES) -services $$(($(INSTANCES)/100)) \
	  -duration $(CHURN_DURATION)s -server-cpus '$(SERVER_CPUS)' -rev $(VERSION)

.PHONY: cluster
cluster: build ## three nodes on 127.0.0.1:8080-8082, peers of each other (ARGS for more flags); logs in cluster-logs/, Ctrl-C stops all
	deploy/cluster.sh $(ARGS)

.PHONY: loadtest-cluster
loadtest-cluster: build ## heartbeat find-max of a 3-node cluster beside one node on the same server CPUs, one run; recorded
	$(LOADTEST) -instances $(INSTANCES) -scenario heartbeat -rate $(RATE) -find-max -step 5s -cluster 3

.PHONY: clusterbench
clusterbench: build ## replication lag at 2,000 changes/s, and the startup sync of 1,000,000 instances (cmd/clusterbench)
	$(GO) run ./cmd/clusterbench -bin bin/artemis -scenario lag -rate 2000 -duration 20s
	$(GO) run ./cmd/clusterbench -bin bin/artemis -scenario sync -instances 1000000

.PHONY: hostile
hostile: build ## the review's hostile clients against a fresh node: gzip bombs, repeated lookups, a status flood, idle sessions after large messages (cmd/hostile)
	$(GO) run ./cmd/hostile -bin bin/artemis

.PHONY: loadtest-smoke
loadtest-smoke: build ## a few seconds of every scenario on 3,000 instances (CI); results to a temp dir
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	for sc in heartbeat service lookup delta churn mixed; do \
	  ./bin/artemis loadtest -instances 3000 -services 30 -scenario $$sc -rate 300 -duration 2s -results $$tmp -record=false | tail -1; \
	  [ "$$(grep -c '"errors": {}' $$tmp/*-$$sc.json)" = 2 ] || { echo "loadtest smoke: $$sc had errors"; cat $$tmp/*-$$sc.json; exit 1; }; \
	done; \
	for lib in gobwas gorilla; do \
	  ./bin/artemis loadtest -scenario push -subscribers 50 -rate 20 -duration 2s -ws-library $$lib -results $$tmp -record=false | tail -1; \
	  f=$$(ls -t $$tmp/*-push.json | head -1); \
	  exp=$$(sed -n 's/.*"framesExpected": \([0-9]*\).*/\1/p' $$f | tr '\n' ' '); \
	  rec=$$(sed -n 's/.*"framesReceived": \([0-9]*\).*/\1/p' $$f | tr '\n' ' '); \
	  [ -n "$$rec" ] && [ "$$exp" = "$$rec" ] && [ "$$(echo $$rec | wc -w)" = 2 ] || \
	    { echo "loadtest smoke: push ($$lib) lost frames: expected $$exp, received $$rec"; cat $$f; exit 1; }; \
	done; \
	./bin/artemis loadtest -instances 3000 -services 30 -scenario heartbeat -rate 100 -find-max -step 1s -step-factor 2 -max-rate 200 \
	  -results $$tmp -record=false -generator-cpuprofile $$tmp/gen.pprof | tail -1; \
	f=$$(ls $$tmp/*-heartbeat-findmax.json); \
	[ "$$(grep -c '"maxRate": 200,' $$f)" = 2 ] || { echo "loadtest smoke: find-max did not reach 200/s on both servers"; cat $$f; exit 1; }; \
	go tool pprof -top bin/artemis $$tmp/gen.pprof | grep -q 'vegeta' || { echo "loadtest smoke: the generator's profile does not show vegeta"; exit 1; }

K6_SCRIPTS := register heartbeat service mixed push

.PHONY: k6
k6: build ## run the k6 scenarios (needs k6 on PATH) against a fresh node, or BASE_URL; summaries in results/
	@if ! command -v k6 >/dev/null; then \
	  echo "k6 is not installed. Install it (https://grafana.com/docs/k6/latest/set-up/install-k6/),"; \
	  echo "then run make k6 again; make k6-dryrun checks the scripts with Node.js meanwhile."; exit 1; fi
	@set -e; base="$(BASE_URL)"; \
	if [ -z "$$base" ]; then port=$$((20000 + RANDOM % 20000)); base=http://127.0.0.1:$$port; \
	  ./bin/artemis server --addr 127.0.0.1:$$port >/dev/null 2>&1 & srv=$$!; trap "kill $$srv" EXIT; sleep 1; fi; \
	for s in $(K6_SCRIPTS); do r=$(RATE); [ $$s = push ] && r=10; \
	  k6 run -e BASE_URL=$$base -e RATE=$$r -e DURATION=$(DURATION)s k6/$$s.js; done

.PHONY: k6-dryrun
k6-dryrun: build ## prove the k6 scripts under Node.js against a live node (CI); broken scripts must fail
	k6/dryrun/ci.sh

.PHONY: profile
profile: build ## capture cpu/heap/allocs/mutex/block/goroutine profiles of SCENARIO under load into profiles/
	@d=$$(git describe --tags --always --dirty); \
	profiles/capture.sh ./bin/artemis $(SCENARIO) profiles/$(STAMP)-$$d-$(SCENARIO) 20 $(INSTANCES) $(RATE) '$(SERVER_CPUS)'

.PHONY: profile-diff
profile-diff: build ## build BASE in a worktree, profile both under SCENARIO, print pprof -top -diff_base
	@set -e; tmp=$$(mktemp -d); trap 'git worktree remove --force $$tmp/base >/dev/null 2>&1; rm -rf $$tmp' EXIT; \
	git worktree add --detach $$tmp/base $(BASE) >/dev/null; \
	(cd $$tmp/base && $(GO) build -o $$tmp/artemis-base ./cmd/artemis); \
	cp ./bin/artemis $$tmp/artemis-new; \
	profiles/capture.sh $$tmp/artemis-base $(SCENARIO) $$tmp/base 15 $(INSTANCES) $(RATE) '$(SERVER_CPUS)'; \
	profiles/capture.sh $$tmp/artemis-new $(SCENARIO) $$tmp/new 15 $(INSTANCES) $(RATE) '$(SERVER_CPUS)'; \
	$(GO) tool pprof -top -nodecount=25 -diff_base $$tmp/base-cpu.pb.gz $$tmp/artemis-new $$tmp/new-cpu.pb.gz

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
