# spiffe-entra-gateway
GO        ?= go
BIN       := bin/spiffe-entra-gateway
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -s -w -X github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/version.Version=$(VERSION)
DATA_DIR  ?= ./data
GOARCH    ?= $(shell $(GO) env GOARCH)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null)
# Every timestamp in the image is the commit's time: the same commit gives
# the same digest.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

.PHONY: build image run test e2e bench bench-compare fuzz lint postgres clean

## build: compile the gateway into bin/spiffe-entra-gateway
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/spiffe-entra-gateway

## image: the OCI image of the static linux binary, built without a container
## runtime (build/image): bin/image (an OCI image layout) and bin/image.tar
## (docker load), named as the chart's default image. -buildvcs=false: Go
## would stamp the binary with whether the work tree has untracked files.
image:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) $(GO) build -trimpath -buildvcs=false -ldflags '$(LDFLAGS)' \
		-o bin/linux-$(GOARCH)/spiffe-entra-gateway ./cmd/spiffe-entra-gateway
	env -u GOOS -u GOARCH $(GO) run ./build/image --binary bin/linux-$(GOARCH)/spiffe-entra-gateway --arch $(GOARCH) \
		--version $(VERSION) --revision $(REVISION) --created $(SOURCE_DATE_EPOCH)

## run: start the gateway in development mode on embedded defaults
run: build
	$(BIN) serve --dev --data-dir $(DATA_DIR)

## test: the fast suites (unit, store conformance on SQLite and PostgreSQL,
## in-process end to end). A private PostgreSQL cluster on a loopback port
## is installed and started for the PostgreSQL runs (test/postgres/pg.sh).
test:
	eval "$$(test/postgres/pg.sh start)" && $(GO) test -count=1 ./...

## e2e: the slow suites: the real Node Azure SDKs (pinned in test/node)
## against a development gateway process, real SPIRE (test/spire), and a real
## Kubernetes control plane installing the chart (test/k8s, docs/kubernetes.md)
e2e:
	test/e2e/run.sh

## postgres: start the private PostgreSQL cluster and print its settings
postgres:
	@test/postgres/pg.sh start

## bench: benchmarks; numbers are recorded in docs/benchmarks.md. The
## discovery provider is measured beside SPIRE's (built by test/spire/build.sh).
bench:
	eval "$$(test/postgres/pg.sh start)" && GATEWAY_TEST_SPIRE_BIN="$$(test/spire/build.sh)" \
		$(GO) test -run '^$$' -bench . -benchmem ./...

## bench-compare: the token endpoint and discovery benchmarks with the
## gateway of BEFORE and of AFTER (default HEAD) side by side in one run, and
## a CPU profile of each (test/procbench/compare.sh says what it sets)
bench-compare:
	@test -n "$(BEFORE)" || { echo "usage: make bench-compare BEFORE=<rev> [AFTER=<rev>]"; exit 2; }
	test/procbench/compare.sh '$(BEFORE)' '$(or $(AFTER),HEAD)'

## fuzz: every fuzz target for FUZZTIME (default 20s) each
fuzz:
	test/fuzz.sh

## lint: formatting, vet and golangci-lint (.golangci.yml; pinned and built
## once into .tools/ by build/golangci-lint.sh)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	"$$(build/golangci-lint.sh)" run ./...

clean:
	-test/postgres/pg.sh stop
	rm -rf bin .tools/postgres .tools/spire-* .tools/kubernetes-* .tools/runc-* .tools/umoci-* .tools/skopeo-*
