# csi-kit/sidecars
#   make build  the binaries, with version and commit linked in, to _output/bin
#   make images one OCI image tarball per binary to _output/images (no container engine)
#   make demo   run the five field scenarios on a local control plane
#   make test   vet + race tests of everything, integration tests included
#   make bench  benchmarks on the real control plane
#   make lint   gofmt, go vet, staticcheck

GO        ?= go
PKGS      ?= ./...
BENCH_N   ?= 1000
LOAD_N    ?= 5000
TEST_TIMEOUT ?= 60m
OUT       ?= _output
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
VERSION_PKG = github.com/csi-kit/sidecars/internal/version
LDFLAGS   = -X $(VERSION_PKG).version=$(VERSION) -X $(VERSION_PKG).commit=$(COMMIT)
BINARIES  = csi-provisioner csi-resizer csi-snapshotter snapshot-controller snapshot-conversion-webhook csi-sidecars driver

.PHONY: all test unit controlplane demo bench lint fmt build images docs

all: build

build:
	$(GO) build ./...
	$(GO) build -ldflags '$(LDFLAGS)' -o $(OUT)/bin/ $(addprefix ./examples/,$(BINARIES))

images:
	$(GO) run ./hack/images -go $(GO) -out $(OUT)/images -version $(VERSION) -commit $(COMMIT)

controlplane:
	@bash testkit/controlplane/build.sh >/dev/null

test: controlplane
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)
	@echo "checking that docs/flags.md matches the binaries' flags"
	@$(GO) run ./hack/flagdoc -check

unit:
	$(GO) test -race -short -count=1 $(PKGS)

demo: controlplane
	$(GO) run ./examples/demo

bench: controlplane
	@mkdir -p bench-results
	CSIKIT_BENCH_N=$(BENCH_N) $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m \
		./testkit/controlplane/ ./provisioner/ ./resizer/ ./snapshotter/ | tee bench-results/latest.txt
	@echo "load: $(LOAD_N) claims provisioned, resized and snapshotted with two leader changes"
	CSIKIT_LOAD_N=$(LOAD_N) $(GO) test -run '^TestLoadWithLeaderChanges$$' -count=1 -timeout 60m ./faults/ 2>&1 | grep '^load:' | tee -a bench-results/latest.txt

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

docs:
	$(GO) run ./hack/flagdoc
