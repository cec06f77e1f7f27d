# clusterctl — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/clusterctl/clusterctl/version.Version=$(VERSION)
ARCHES    := amd64 arm64
PAUSE_REF := $(shell sed -n 's/^const PauseImage = "\(.*\)"/\1/p' version/version.go)
INVENTORY ?= demo.yaml
LAB_HOSTS ?= 3
export CGO_ENABLED := 0
export GOFLAGS     := -buildvcs=false -trimpath

.PHONY: help
help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/clusterctl with agentlet (amd64+arm64) and the pause image embedded
	@mkdir -p build bin agentlet/pause/image/amd64 agentlet/pause/image/arm64 agentlet/dist/bin
	@for a in $(ARCHES); do \
	  GOOS=linux GOARCH=$$a $(GO) build -ldflags '-s -w' -o build/pause-linux-$$a ./cmd/pause || exit 1; \
	  $(GO) run ./tools/mkimage -ref $(PAUSE_REF) -arch $$a -file /pause=build/pause-linux-$$a:0755 \
	    -entrypoint /pause -o agentlet/pause/image/$$a/pause-linux-$$a.tar || exit 1; \
	  GOOS=linux GOARCH=$$a $(GO) build -tags grpcnotrace -ldflags '$(LDFLAGS)' \
	    -o agentlet/dist/bin/agentlet-linux-$$a ./cmd/agentlet || exit 1; \
	done
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/clusterctl ./cmd/clusterctl
	@ls -l bin/clusterctl agentlet/dist/bin/agentlet-linux-* | awk '{printf "  %-40s %6.2f MiB\n", $$9, $$5/1048576}'

.PHONY: deps
deps: ## install the Debian packages the lab and the integration tests need (root)
	@hack/install-deps.sh

.PHONY: test
test: deps build ## run unit tests, then the lab integration tests (as root; skipped otherwise)
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "not gofmt-ed:"; echo "$$out"; exit 1; fi
	CLUSTERCTL_BIN=$(CURDIR)/bin/clusterctl $(GO) test -count=1 -timeout 30m ./...
	@$(MAKE) --no-print-directory fuzz FUZZTIME=10s
	@hack/skipped-note.sh

FUZZTIME ?= 1m
FUZZ_TARGETS := ./inventory:FuzzParse ./inventory:FuzzParseSnapshot ./manifest:FuzzDecode ./nodeapi:FuzzDecodeNodeSpec

.PHONY: fuzz
fuzz: ## fuzz the inventory, manifest and NodeSpec parsers for FUZZTIME each (corpora in each package's testdata/fuzz)
	@for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; fn=$${t##*:}; echo "fuzz $$pkg $$fn for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

.PHONY: demo
demo: deps build ## local 3-host lab, `clusterctl up`, a demo app deployed and reachable
	bin/clusterctl lab up --hosts $(LAB_HOSTS) --inventory $(INVENTORY)
	bin/clusterctl up -i $(INVENTORY)
	$(GO) run ./tools/mkimage -busybox -ref localhost/clusterctl/busybox:demo -arch $$($(GO) env GOARCH) -o build/busybox-demo.tar
	bin/clusterctl image load build/busybox-demo.tar -i $(INVENTORY)
	bin/clusterctl apply -f examples/demo.yaml -i $(INVENTORY) --wait --timeout 2m
	bin/clusterctl get nodes -i $(INVENTORY) -o wide
	bin/clusterctl get pods -i $(INVENTORY) -o wide
	bin/clusterctl get svc -i $(INVENTORY)
	bin/clusterctl get endpoints -i $(INVENTORY)
	@addr=$$(awk '$$2 == "name:" && $$3 == "h1" {getline; print $$2; exit}' $(INVENTORY)); \
	  echo; echo "The demo app answers on h1's hostPort: http://$$addr:8080/"; \
	  timeout 5 busybox wget -q -O - http://$$addr:8080/
	@addr=$$(awk '$$2 == "name:" && $$3 == "h2" {getline; print $$2; exit}' $(INVENTORY)); \
	  echo; echo "And through the demo Service's NodePort on h2 (the pod runs on h1): http://$$addr:30080/"; \
	  timeout 5 busybox wget -q -O - http://$$addr:30080/
	@echo; echo "The lab keeps running. Explore: bin/clusterctl describe pod demo -i $(INVENTORY)"
	@echo "Remove everything with: make lab-down"

.PHONY: lab-up
lab-up: deps build ## start a local lab of LAB_HOSTS hosts and write INVENTORY
	bin/clusterctl lab up --hosts $(LAB_HOSTS) --inventory $(INVENTORY)

.PHONY: lab-down
lab-down: ## remove the local lab and everything it made
	@if [ -x bin/clusterctl ]; then bin/clusterctl lab down; else echo "bin/clusterctl not built: nothing to do"; fi

.PHONY: bench
bench: deps build ## run the benchmarks (lab ones need root; installs ansible for the reconcile comparison)
	@command -v ansible >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ansible >/dev/null; }
	CLUSTERCTL_BIN=$(CURDIR)/bin/clusterctl $(GO) test -count=1 -run '^$$' -bench . -benchtime 3x -timeout 90m ./...

.PHONY: clean
clean: ## remove build outputs
	rm -rf bin build agentlet/pause/image/*/*.tar agentlet/dist/bin/agentlet-*
