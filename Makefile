# hotsnap: `make demo` runs the main job on the embedded default (one node,
# no servers); `make test` installs what the tests need and runs them all.
GO    ?= go
BIN   := bin
CACHE ?= $(HOME)/.cache/hotsnap

.PHONY: build demo demo-cluster test test-deps vet bench fuzz docs clean

build:
	$(GO) build -o $(BIN)/hotsnap ./cmd/hotsnap
	$(GO) build -o $(BIN)/bankwriter ./examples/bankwriter

demo: build
	bash scripts/demo.sh

# etcd for the cluster demo is built from the Go module proxy (scripts/etcd,
# go.etcd.io/etcd/server/v3/embed); nothing else is installed.
demo-cluster: build
	$(GO) build -o $(BIN)/hotsnap-etcd ./scripts/etcd
	bash scripts/demo-cluster.sh

# The archive tests need a MinIO server: scripts/install-test-deps.sh builds
# it once from the Go module proxy into $(CACHE)/bin. The cluster tests need
# no install: they run a real etcd (go.etcd.io/etcd/server/v3/embed, a
# module dependency) inside the test process.
test-deps:
	bash scripts/install-test-deps.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	$(GO) vet ./...

test: test-deps vet
	$(GO) test -race -count=1 ./...

bench:
	bash scripts/bench.sh

# docs/cli.md is generated from the command definitions; a test fails when
# it is stale.
docs:
	HOTSNAP_UPDATE_DOCS=1 $(GO) test ./cmd/hotsnap -run '^(TestDocs_CLIReference|TestSchemas_Fresh)$$' -count=1

# Fuzz every reader of outside input for FUZZTIME each.
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./manifest -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./archive -run '^$$' -fuzz '^FuzzParsePack$$' -fuzztime $(FUZZTIME)
	$(GO) test ./archive -run '^$$' -fuzz '^FuzzDecodeIndex$$' -fuzztime $(FUZZTIME)
	$(GO) test ./archive -run '^$$' -fuzz '^FuzzDecodeSnapshotObject$$' -fuzztime $(FUZZTIME)
	$(GO) test ./archive -run '^$$' -fuzz '^FuzzHostileArchive$$' -fuzztime $(FUZZTIME)

clean:
	rm -rf $(BIN)
