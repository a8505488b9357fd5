# kms-autotagger. `make demo` shows the product work on this machine with no
# AWS account; `make test` runs every test. Tools the local targets need are
# pinned (go.mod `tool` lines, package-lock.json) and installed into .tools/
# and node_modules/ by the targets themselves.

SHELL       := bash
.SHELLFLAGS := -eu -o pipefail -c
GO          ?= go
TOOLS_BIN   := $(CURDIR)/.tools/bin
BIN         := $(CURDIR)/bin
export AUTOTAGGER_TOOLS_BIN := $(TOOLS_BIN)

# The flags Lambda builds use; the demo and the end-to-end tests build the
# same binary for this machine.
BUILD_FLAGS := -trimpath -tags lambda.norpc -ldflags="-s -w"
GO_SOURCES  := $(shell find . -name '*.go' -not -path './.tools/*' -not -path './node_modules/*') go.mod go.sum

EVENT ?= events/createkey_iamuser.json
STACK ?= kms-autotagger

.PHONY: help all build build-AutoTaggerFunction tools test lint fmt bench fuzz demo invoke deploy clean

all: build

## build: the bootstrap (Lambda) and autotagger (CLI) binaries for this machine, in bin/
build: $(BIN)/bootstrap

$(BIN)/bootstrap: $(GO_SOURCES)
	CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o $@ ./cmd/autotagger
	ln -sf bootstrap $(BIN)/autotagger

## build-AutoTaggerFunction: what `sam build` runs (BuildMethod: makefile): linux/arm64 bootstrap into $(ARTIFACTS_DIR)
build-AutoTaggerFunction:
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: run this target through 'sam build'" >&2; exit 1; }
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o "$(ARTIFACTS_DIR)/bootstrap" ./cmd/autotagger

## tools: the pinned local stand-ins: local-kms and the Lambda runtime interface emulator (go.mod tools), local-aws-sqs (npm)
tools: $(TOOLS_BIN)/.installed node_modules/.package-lock.json

$(TOOLS_BIN)/.installed: go.mod go.sum
	mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) $(GO) install tool
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	@command -v node >/dev/null || { echo "node (Node.js 18 or later) is needed for the SQS stand-in" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error

## test: lint, then every test (unit, integration against the stand-ins, end to end under the emulator) with the race detector
test: tools lint
	$(GO) test -race -count=1 -timeout 20m ./...

## lint: gofmt and go vet
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted" >&2; exit 1; fi
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: the benchmarks (see docs/PERFORMANCE.md)
bench: tools
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./... | tee $(CURDIR)/bench/latest.txt

## fuzz: fuzz the event decoder (FUZZTIME=10m for a long run)
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./internal/events/

## demo: run the real bootstrap under the Lambda runtime interface emulator against local KMS (two regions) and SQS, post every events/ sample, print what happened
demo: tools build
	$(GO) run ./cmd/demo --bootstrap $(BIN)/bootstrap --events events

## invoke: run the handler once on EVENT (default $(EVENT)) with this shell's environment (AWS credentials, endpoints, settings)
invoke: build
	$(BIN)/autotagger invoke --event $(EVENT)

## deploy: build and deploy with the AWS SAM CLI (needs `sam` and AWS credentials)
deploy:
	@command -v sam >/dev/null || { echo "deploy needs the AWS SAM CLI (sam) on PATH" >&2; exit 1; }
	sam build
	sam deploy --stack-name $(STACK) --capabilities CAPABILITY_IAM --resolve-s3 $(if $(GUIDED),--guided,)

clean:
	rm -rf $(BIN) .aws-sam .tools node_modules

help:
	@grep -E '^## ' Makefile | sed 's/^## /  /'
