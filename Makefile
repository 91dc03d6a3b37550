# Outrig build entry points. `make demo` and `make test` are the two commands a
# fresh machine needs; everything they use is installed by the targets below.
SHELL := /bin/bash
export PATH := $(CURDIR)/bin/tools:$(PATH)

BUF_VERSION              := v1.47.2
PROTOC_GEN_GO_VERSION    := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1
GO_PKGS := ./... ./api/... ./sdk-go/...

.PHONY: build build-slim demo test unit test-integration generate verify tools bench clean

VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

build:
	go build -ldflags "-X main.version=$(VERSION)" -o bin/outrig ./cmd/outrig
	go build -o bin/checkout-app ./examples/apps/checkout
	go build -o bin/orders-app ./examples/apps/orders

# A sidecar without the backends a deployment does not use (tags
# outrig_no_<backend>, see cmd/outrig/components.go): by default only Redis
# and the in-memory components. make build-slim OUTRIG_OMIT="kafka cron"
OUTRIG_BACKENDS := redis mysql mongodb zookeeper kafka rocketmq http cron
OUTRIG_OMIT ?= mysql mongodb zookeeper kafka rocketmq http cron
comma := ,
no_tags = $(subst $(eval) ,$(comma),$(strip $(foreach b,$(1),outrig_no_$(b))))

build-slim:
	go build -tags "$(call no_tags,$(OUTRIG_OMIT))" -ldflags "-X main.version=$(VERSION)" -o bin/outrig-slim ./cmd/outrig
	./bin/outrig-slim version

demo: build
	./bin/outrig demo --bin-dir bin

# Pinned code generators, installed from the Go module proxy into bin/tools.
tools: bin/tools/.stamp-$(BUF_VERSION)-$(PROTOC_GEN_GO_VERSION)-$(PROTOC_GEN_GO_GRPC_VERSION)
bin/tools/.stamp-%:
	mkdir -p bin/tools
	GOBIN=$(CURDIR)/bin/tools go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	GOBIN=$(CURDIR)/bin/tools go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(CURDIR)/bin/tools go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	touch $@

generate: tools
	cd api && rm -rf gen && buf generate

# Regenerates code and fails on any difference; checks gofmt and go vet.
verify: generate
	@git diff --exit-code -- api/gen || (echo "generated code is stale: run make generate"; exit 1)
	@test -z "$$(git status --porcelain -- api/gen)" || (echo "untracked generated files"; exit 1)
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^api/gen/')); test -z "$$out" || (echo "gofmt needed: $$out"; exit 1)
	go vet $(GO_PKGS)
	go vet -tags "$(call no_tags,$(OUTRIG_BACKENDS))" ./cmd/outrig

unit:
	go test -race -count=1 $(GO_PKGS)

test: verify build
	scripts/test.sh

bench: build build-slim
	go run ./bench/compare -outrig bin/outrig -outrig-slim bin/outrig-slim $(BENCH_FLAGS)

clean:
	rm -rf bin
