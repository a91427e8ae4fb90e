# weir build and test entry points. CI runs `make deps` and `make test`
# (see .ci/run); everything here must work on a fresh machine as root.

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
.DEFAULT_GOAL := build

export PATH := /usr/local/go/bin:$(PATH)
# Never let the go command try to download another toolchain: no such
# download is possible here, and a clear version error is better.
export GOTOOLCHAIN ?= local

GO_MIN       := 1.26
VERSION      := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS      := -X weir.dev/weir/cmd/weir/app.Version=$(VERSION)
TEST_TIMEOUT ?= 40m
TEST_LOG     ?= /tmp/weir-test.log
TEST_FLAGS   ?=
PKGS         ?= ./...
BENCH_TIMEOUT       ?= 60m
BENCH_QUICK_TIMEOUT ?= 10m
BENCH_ARGS   ?=

# Debian packages the project needs at build, test or bench time. Some serve
# later parts of the project (eBPF build, containerd runtime, load tools).
DEB_PACKAGES := etcd-server etcd-client containerd runc iptables nftables \
	clang llvm libbpf-dev bpftool busybox-static iproute2 wrk iperf3 ethtool \
	docker-registry

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps check-go build generate images test test-short bench bench-quick \
	verify up down clean

all: build

## deps: install missing Debian packages; check Go >= $(GO_MIN)
deps: check-go
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
		s=$$(dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null || true); \
		[ "$$s" = "install ok installed" ] || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then \
		echo "deps: all Debian packages present"; \
	else \
		echo "deps: installing:$$missing"; \
		$(SUDO) apt-get update -qq; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y \
			--no-install-recommends $$missing; \
	fi; \
	[ -x /usr/bin/etcd ] || { echo "deps: /usr/bin/etcd missing after install" >&2; exit 1; }

check-go:
	@command -v go >/dev/null || { \
		echo "Go >= $(GO_MIN) not found: install it at /usr/local/go (looked in /usr/local/go/bin and PATH)" >&2; \
		exit 1; }
	@v=$$(go env GOVERSION); v=$${v#go}; v=$${v%% *}; \
	if [ "$$(printf '%s\n%s\n' "$(GO_MIN)" "$$v" | sort -V | head -n1)" != "$(GO_MIN)" ]; then \
		echo "Go >= $(GO_MIN) required, found $$v at $$(command -v go)" >&2; exit 1; \
	fi; \
	echo "deps: $$(go version)"

## build: the single binary bin/weir
build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/weir ./cmd/weir
	CGO_ENABLED=0 go build -trimpath -o bin/weir-echo ./cmd/weir-echo

## images: the test images as OCI tarballs, bin/images/{busybox,echo}.tar,
# built by the code the agents use to import them (load one into a running
# cluster with bin/weir image import FILE.tar)
images: deps build
	bin/weir image build --out bin/images --echo-binary bin/weir-echo

## generate: bpf2go and other generators (needs clang from deps)
generate:
	go generate ./...

## test: every package, real processes; summary in $(TEST_LOG)
test: deps
	go test -count=1 -p 2 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) $(PKGS) 2>&1 | tee $(TEST_LOG)

## test-short: go test -short
test-short: deps
	go test -short -count=1 -p 2 -timeout 10m $(TEST_FLAGS) $(PKGS) 2>&1 | tee $(TEST_LOG)

## bench: API benchmark into bench/results, capped at $(BENCH_TIMEOUT)
# Built first and run directly so the time cap's signal reaches the program
# itself (go run would not forward it).
bench: build
	go build -o bin/apibench ./bench/cmd/apibench
	go build -o bin/dpbench ./bench/cmd/dpbench
	mkdir -p bench/results
	timeout --signal=INT --kill-after=30s $(BENCH_TIMEOUT) bin/apibench -out bench/results $(BENCH_ARGS)
	timeout --signal=INT --kill-after=30s $(BENCH_TIMEOUT) bin/dpbench -out bench/results

bench-quick: build
	go build -o bin/apibench ./bench/cmd/apibench
	go build -o bin/dpbench ./bench/cmd/dpbench
	mkdir -p bench/results
	timeout --signal=INT --kill-after=30s $(BENCH_QUICK_TIMEOUT) bin/apibench -quick -out bench/results $(BENCH_ARGS)
	timeout --signal=INT --kill-after=30s $(BENCH_QUICK_TIMEOUT) bin/dpbench -quick -out bench/results

## verify: generated code up to date, gofmt, go vet, go.mod tidy
verify: generate
	@out=$$(git status --porcelain -- '*_bpfel.go' '*_bpfel.o'); \
	if [ -n "$$out" ]; then echo "verify: generated files differ from the commit (run make generate and commit):"; echo "$$out"; exit 1; fi
	@out=$$(find . -name '*.go' -not -name '*_bpfel.go' -not -path './.git/*' -not -path './vendor/*' -print0 | xargs -0 -r gofmt -l); \
	if [ -n "$$out" ]; then echo "verify: gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	go mod tidy -diff

## up/down: a local multi-node cluster (see DESIGN.md)
up: deps build
	bin/weir up --detach
	bin/weir demo

down: build
	bin/weir down

clean:
	rm -rf bin
