# Weft's build. `make test` works on a fresh Debian machine as root: it
# installs the Debian packages and builds the external tools it needs.
SHELL := /bin/bash
GO ?= $(shell command -v go || echo /usr/local/go/bin/go)
export PATH := $(dir $(GO)):$(PATH)

# Debian packages the build and the privileged tests use. clang/llvm are
# Debian bookworm's clang 14 (bpf2go output is reproducible with it).
CLANG_VERSION := 14
DEB_PACKAGES := clang llvm libbpf-dev protobuf-compiler iproute2 iptables iperf3 iputils-ping systemd util-linux prometheus chromium
TEST_TIMEOUT ?= 40m
TEST_FLAGS ?= -race -count=1
PKGS ?= ./...
REQUIRE_ALL := $(if $(CI),-require-all,$(if $(filter 1,$(WEFT_REQUIRE_ALL)),-require-all,))

.PHONY: all build test deps tools generate verify-generate lint bench demo clean install uninstall manifests image

all: build

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/ ./cmd/...

## deps: Debian packages (apt-get update first, only when something is missing).
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	$(GO) mod download

## tools: external programs built from the Go module proxy, cached by version
## (built concurrently; kube-apiserver's build also yields kubectl, for `weft testenv kubectl`).
tools:
	$(GO) run ./hack/tools consul cnitool etcd kube-apiserver helm

## image: the OCI image (static binaries in /usr/local/bin, no base image,
## reproducible) as an OCI archive: bin/weft-image.oci.tar.
image: deps
	$(GO) run ./hack/image -o bin/weft-image.oci.tar -version $(VERSION)

## manifests: deploy/manifests/weft.yaml from the Helm chart (checked by
## deploy's tests).
manifests: deps
	helm=$$($(GO) run ./hack/tools helm) && bash deploy/manifests/render.sh "$$helm" > deploy/manifests/weft.yaml

GENERATED := ./datapath/bpf/... ./api/...
generate: deps
	$(GO) generate $(GENERATED)

verify-generate: generate
	git diff --exit-code -- datapath/bpf/ api/ || (echo "generated files are stale: run make generate and commit" && exit 1)

lint:
	@bad=$$(git ls-files '*.go' | xargs grep -L '^// Code generated' | xargs gofmt -l); \
	if [ -n "$$bad" ]; then echo "gofmt needed: $$bad"; exit 1; fi
	$(GO) vet ./...

## test: everything, privileged and integration tests included. In CI (CI set)
## a skipped test fails the run.
test: deps tools lint verify-generate
	set -o pipefail; $(GO) test $(TEST_FLAGS) -timeout $(TEST_TIMEOUT) -json $(PKGS) \
		| tee test-report.json | $(GO) run ./hack/testsummary $(REQUIRE_ALL)

## bench: every benchmark, with comparison tables (ratios to the baseline
## measured in the same run). BENCH_PKGS narrows it, BENCH the pattern.
## Peers that only benchmarks compare against (flanneld) are built here,
## not for `make test`. Packages run one at a time (-p 1): two benchmarks
## at once would measure each other.
BENCH_PKGS ?= ./...
BENCH ?= .
BENCH_TIMEOUT ?= 3h
bench: deps tools
	$(GO) run ./hack/tools flanneld >/dev/null
	set -o pipefail; $(GO) test -p 1 -run '^$$' -bench '$(BENCH)' -timeout $(BENCH_TIMEOUT) $(BENCH_PKGS) | $(GO) run ./bench/benchtable

## demo: build, bring up two clusters of two nodes each (testenv connects
## them with clustermesh: one weft-apiserver per cluster), show `weft
## clustermesh status` once every node is connected and synced, run the
## connectivity test (cross-cluster scenarios included), show the last flows
## of its traffic across the mesh (`weft observe --relay c1`), show `weft status`,
## tear down (also on failure). KEEP=1 keeps the environment; DEMO_NAME and
## DEMO_FLAGS (e.g. "--routing native") tune it.
DEMO_NAME ?= weft
DEMO_FLAGS ?=
demo: deps build
	@rc=0; \
	./bin/weft testenv up --name $(DEMO_NAME) --clusters 2 --nodes 2 --replace $(DEMO_FLAGS) || rc=$$?; \
	if [ $$rc -eq 0 ]; then echo; ./bin/weft --name $(DEMO_NAME) clustermesh status --wait --wait-duration 1m || rc=$$?; fi; \
	if [ $$rc -eq 0 ]; then echo; ./bin/weft connectivity test --name $(DEMO_NAME) || rc=$$?; fi; \
	if [ $$rc -eq 0 ]; then echo; echo "The connectivity test's traffic across the mesh, through c1's relay (weft observe --relay c1 --last 10):"; \
		./bin/weft --name $(DEMO_NAME) observe --relay c1 --last 10 --print-node-name --color never || rc=$$?; fi; \
	if [ $$rc -eq 0 ] || [ -d /var/run/weft/testenv/$(DEMO_NAME) ]; then \
		echo; ./bin/weft --name $(DEMO_NAME) status || rc=$$((rc ? rc : $$?)); \
		echo; ./bin/weft testenv status --name $(DEMO_NAME) || rc=$$((rc ? rc : $$?)); fi; \
	if [ "$(KEEP)" = "1" ]; then \
		echo; echo "KEEP=1: environment $(DEMO_NAME) kept; remove it with: ./bin/weft testenv down --name $(DEMO_NAME)"; \
	else echo; ./bin/weft testenv down --name $(DEMO_NAME) || rc=$$((rc ? rc : $$?)); fi; \
	exit $$rc

## install: binaries to $(BINDIR), weft-cni to $(CNI_BIN_DIR), the systemd
## units to $(UNIT_DIR), and, unless they exist (FORCE=1 replaces them), the
## CNI conflist to $(CNI_CONF_DIR) and config examples to $(CONF_DIR); all
## under $(DESTDIR). uninstall removes exactly what install wrote (a config
## file only while unchanged). See docs/deploy-hosts.md.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATA_DIR ?= $(PREFIX)/share/weft
CNI_BIN_DIR ?= /opt/cni/bin
CNI_CONF_DIR ?= /etc/cni/net.d
UNIT_DIR ?= /etc/systemd/system
CONF_DIR ?= /etc/weft
INSTALL_VARS = DESTDIR="$(DESTDIR)" FORCE="$(FORCE)" SRC=deploy BIN=bin BINDIR="$(BINDIR)" DATA_DIR="$(DATA_DIR)" \
	CNI_BIN_DIR="$(CNI_BIN_DIR)" CNI_CONF_DIR="$(CNI_CONF_DIR)" UNIT_DIR="$(UNIT_DIR)" CONF_DIR="$(CONF_DIR)"
install: build
	$(INSTALL_VARS) sh deploy/install.sh install
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
uninstall:
	$(INSTALL_VARS) sh deploy/install.sh uninstall
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

clean:
	rm -rf bin test-report.json
