# securetextd — the two commands a newcomer needs are `make run` and `make test`.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/securetextd/securetextd.Version=$(VERSION)
export CGO_ENABLED := 1

.PHONY: all build run test test-deps lint bench soak fuzz clean

# Fuzz targets, as package:Function; `make fuzz` runs each for FUZZTIME.
FUZZ_TARGETS := .:FuzzPhoneRulesParse ./smtp:FuzzPhoneMemo ./smtp:FuzzWalkMessage ./smtp:FuzzCRLFReader ./notify:FuzzTemplate \
	./smtp:FuzzRelayFrom ./portal:FuzzReplyForm ./portal:FuzzSetupForm ./portal:FuzzFindURLs ./smtp:FuzzBase64Reader \
	./internal/webedge:FuzzResolveClient \
	./store:FuzzHeaderFormat ./export:FuzzMboxrd
FUZZTIME ?= 20s
# make test fuzzes each target too: 20 s in CI (CI=true), 3 s otherwise.
ifeq ($(CI),true)
TEST_FUZZTIME ?= 20s
else
TEST_FUZZTIME ?= 3s
endif
# The packages whose tests open a store: make test runs them a second time
# with the store on PostgreSQL (a private server, internal/pgtest). notify
# and ops are listed for the tests that will give them a store.
STORE_PKGS := ./store ./smtp ./portal ./console ./notify ./ops ./cmd/securetextd
# make soak kills the daemon this many times (make test: 20).
SOAK_KILLS ?= 300

all: build

## build: compile bin/securetextd and bin/securetextd-pwcheck (which judges new sender passwords)
# The first build compiles SQLite's C code (cgo): minutes on a slow
# machine, while go build prints nothing. build says so first, when go list
# finds SQLite missing from the build cache.
build:
	@if [ "$$($(GO) list -f '{{.Stale}}' github.com/mattn/go-sqlite3 2>/dev/null)" != false ]; then \
		echo "building bin/securetextd: the first build compiles SQLite (C code, through cgo),"; \
		echo "which takes a few minutes on a slow machine, with nothing printed meanwhile; later builds take seconds"; \
	fi
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/securetextd ./cmd/securetextd-pwcheck

## run: start the gateway on the embedded default (config.example.toml, data under ./data)
run: build
	./bin/securetextd serve --config config.example.toml

## test: install what the tests need when possible, then run every test: all on SQLite, go-smtp's own on our copy of it, then the store's users on PostgreSQL
# third_party/go-smtp is a module of its own (so ./... leaves it out): its
# tests run in its directory. third_party/fork_test.go, in ./..., proves it
# is the release plus docs/go-smtp-*.patch. go-smtp's
# TestServerAcceptErrorHandling is left out: it races Close against Serve's
# Accept and fails now and then on a loaded machine, the release as well.
test: test-deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...
	cd third_party/go-smtp && $(GO) test -race -count=1 -skip '^TestServerAcceptErrorHandling$$' ./...
	SECURETEXTD_TEST_ENGINE=postgres $(GO) test -race -count=1 -timeout 20m $(STORE_PKGS)
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(TEST_FUZZTIME)

## test-deps: check for (and, as root, install) the programs the tests use
test-deps:
	@scripts/test-deps.sh

## lint: gofmt, go vet and staticcheck
# Our code only: third_party/go-smtp is upstream's code plus our patches,
# kept as upstream writes it (./... leaves that module out already).
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' ':!third_party/go-smtp')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## bench: measure the gateway against smtp-sink, Postfix and Mailpit, and rewrite BENCHMARKS.md (as root, ~10 min)
bench:
	$(GO) run ./bench

## soak: the crash test, long: SOAK_KILLS SIGKILLs of the daemon under load
soak:
	SECURETEXTD_SOAK_KILLS=$(SOAK_KILLS) $(GO) test -count=1 -timeout 60m -run '^TestCrashSafety$$' -v ./cmd/securetextd

## fuzz: run every fuzz target for FUZZTIME (default 20s); crashers land in testdata/fuzz
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		GO=$(GO) scripts/fuzz.sh $$pkg $$fn $(FUZZTIME) || exit 1; \
	done

clean:
	rm -rf bin
