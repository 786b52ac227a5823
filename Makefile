# securetextd — the two commands a newcomer needs are `make run` and `make test`.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/securetextd/securetextd.Version=$(VERSION)
export CGO_ENABLED := 1

.PHONY: all build run test test-deps lint bench fuzz clean

# Fuzz targets, as package:Function; `make fuzz` runs each for FUZZTIME.
FUZZ_TARGETS := .:FuzzPhoneRulesParse ./smtp:FuzzWalkMessage ./smtp:FuzzCRLFReader ./notify:FuzzTemplate
FUZZTIME ?= 20s

all: build

## build: compile bin/securetextd
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/securetextd ./cmd/securetextd

## run: start the gateway on the embedded default (config.example.toml, data under ./data)
run: build
	./bin/securetextd serve --config config.example.toml

## test: install what the tests need when possible, then run every test
test: test-deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

## test-deps: check for (and, as root, install) the programs the tests use
test-deps:
	@scripts/test-deps.sh

## lint: gofmt, go vet and staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## bench: run the benchmarks (figures go in BENCHMARKS.md)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./smtp ./store ./notify
	$(GO) test -run '^$$' -bench IngestSmall -benchtime 3000x -count 5 ./cmd/securetextd
	$(GO) test -run '^$$' -bench LargeMessage -benchtime 1x -count 3 ./cmd/securetextd

## fuzz: run every fuzz target for FUZZTIME (default 20s); crashers land in testdata/fuzz
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

clean:
	rm -rf bin
