# spiffe-entra-gateway
GO        ?= go
BIN       := bin/spiffe-entra-gateway
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -s -w -X github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/version.Version=$(VERSION)
DATA_DIR  ?= ./data

.PHONY: build run test bench lint clean

## build: compile the gateway into bin/spiffe-entra-gateway
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/spiffe-entra-gateway

## run: start the gateway in development mode on embedded defaults
run: build
	$(BIN) serve --dev --data-dir $(DATA_DIR)

## test: the fast suites (unit, conformance, in-process end to end)
test:
	$(GO) test -count=1 ./...

## bench: benchmarks; numbers are recorded in docs/benchmarks.md
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...

## lint: formatting and vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
