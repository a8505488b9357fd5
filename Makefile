# kms-autotagger. `make demo` shows the product work on this machine with no
# AWS account; `make test` runs every test. Tools the local targets need are
# pinned (tools/go.mod `tool` lines, tools/requirements.txt) and installed
# into .tools/ by the targets themselves.

SHELL       := bash
.SHELLFLAGS := -eu -o pipefail -c
GO          ?= go
# go.mod's toolchain line is the Go release this is built, tested and measured
# with (1.27: encoding/json decodes events on its v2 implementation, about twice as
# fast as 1.26). auto lets an older installed go fetch exactly that release
# from the module proxy, as Go does unless a distribution sets it to local.
export GOTOOLCHAIN ?= auto
TOOLS_BIN   := $(CURDIR)/.tools/bin
VENV        := $(CURDIR)/.tools/venv
PYTHON      ?= python3
BIN         := $(CURDIR)/bin
export AUTOTAGGER_TOOLS_BIN := $(TOOLS_BIN)
export AUTOTAGGER_VENV := $(VENV)

# The flags Lambda builds use; the demo and the end-to-end tests build the
# same binary for this machine. lambdaonly leaves the CLI out of the Lambda
# artifact (smaller, faster to start); bin/autotagger is the full binary.
LAMBDA_TAGS := lambda.norpc,lambdaonly
BUILD_FLAGS := -trimpath -tags $(LAMBDA_TAGS) -ldflags="-s -w"
GO_SOURCES  := $(shell find . -name '*.go' -not -path './.tools/*') go.mod go.sum

EVENT ?= events/createkey_iamuser.json
STACK ?= kms-autotagger

.PHONY: help all build build-AutoTaggerFunction tools test lint fmt bench fuzz demo invoke deploy clean

all: build

## build: bin/bootstrap (the Lambda artifact, for this machine) and bin/autotagger (the CLI)
build: $(BIN)/bootstrap $(BIN)/autotagger

$(BIN)/bootstrap: $(GO_SOURCES)
	CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o $@ ./cmd/autotagger

$(BIN)/autotagger: $(GO_SOURCES)
	CGO_ENABLED=0 $(GO) build -trimpath -tags lambda.norpc -ldflags="-s -w" -o $@ ./cmd/autotagger

## build-AutoTaggerFunction: what `sam build` runs (BuildMethod: makefile): linux/arm64 bootstrap into $(ARTIFACTS_DIR)
build-AutoTaggerFunction:
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: run this target through 'sam build'" >&2; exit 1; }
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o "$(ARTIFACTS_DIR)/bootstrap" ./cmd/autotagger

## tools: the pinned local stand-ins and checkers: local-kms and the Lambda runtime interface emulator (tools/go.mod), moto, cfn-lint and aws-sam-translator (tools/requirements.txt, in .tools/venv)
tools: $(TOOLS_BIN)/.installed $(VENV)/.installed

$(TOOLS_BIN)/.installed: tools/go.mod tools/go.sum
	mkdir -p $(TOOLS_BIN)
	cd tools && GOBIN=$(TOOLS_BIN) $(GO) install tool
	touch $@

# --system-site-packages: where the pinned versions are installed already,
# pip fetches nothing.
$(VENV)/.installed: tools/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) (Python 3.9 or later) is needed for moto, cfn-lint and the SAM translator" >&2; exit 1; }
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r tools/requirements.txt
	touch $@

## test: lint, then every test (unit, integration against the stand-ins, end to end under the emulator) with the race detector
test: tools lint
	$(GO) test -race -count=1 -timeout 20m ./...

# The stack templates cfn-lint checks: template.yaml, which it translates
# with the pinned SAM translator first, and the plain CloudFormation of
# deploy/. Besides its default rules, I3042: an ARN that names a partition
# instead of ${AWS::Partition} (moto, which the template tests deploy to,
# knows only the aws partition).
CFN_TEMPLATES := template.yaml $(wildcard deploy/*.yaml)
CFN_LINT      := $(VENV)/bin/python -c 'import sys; from cfnlint.runner import main; sys.exit(main())'

## lint: gofmt, go vet, and cfn-lint (tools/requirements.txt) of template.yaml and deploy/*.yaml
lint: $(VENV)/.installed
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted" >&2; exit 1; fi
	$(GO) vet ./...
	$(CFN_LINT) --include-checks I3042 -- $(CFN_TEMPLATES)

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: what docs/PERFORMANCE.md records (handler overhead, cold start, memory, size, backfill rate, decoder, metrics), summarised in bench/results.txt
bench: tools
	@{ echo "make bench, $$(date -u '+%Y-%m-%d %H:%M:%S UTC')"; \
	  echo "machine: $$(nproc) CPUs, $$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), memory $$(free -h | awk '/^Mem:/ {print $$2}'), $$($(GO) version)"; \
	  echo "load average before: $$(cut -d' ' -f1-3 /proc/loadavg)"; } | tee $(CURDIR)/bench/results.txt
	@echo "== handler overhead: full handler vs bare TagResource against local-kms" | tee -a $(CURDIR)/bench/results.txt
	$(GO) test -run '^$$' -bench HandlerOverhead -benchtime 3s -count 5 ./internal/app/ | tee -a $(CURDIR)/bench/results.txt
	@echo "== cold start under the Lambda RIE: bootstrap vs hello world (100 each, 3 runs)" | tee -a $(CURDIR)/bench/results.txt
	$(GO) test -run '^$$' -bench ColdStart -benchtime 100x -count 3 ./bench/ | tee -a $(CURDIR)/bench/results.txt
	@echo "== warm invocations under the Lambda RIE and peak memory (VmHWM) of the function process" | tee -a $(CURDIR)/bench/results.txt
	$(GO) test -run '^$$' -bench WarmInvocation -benchtime 200x ./bench/ | tee -a $(CURDIR)/bench/results.txt
	@echo "== backfill rate vs its TagResource limit" | tee -a $(CURDIR)/bench/results.txt
	$(GO) test -run '^$$' -bench Backfill -count 3 ./internal/backfill/ | tee -a $(CURDIR)/bench/results.txt
	@echo "== event decoder and metrics line" | tee -a $(CURDIR)/bench/results.txt
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./internal/events/ ./internal/metrics/ | tee -a $(CURDIR)/bench/results.txt
	@echo "== size of the linux/arm64 bootstrap and its zip" | tee -a $(CURDIR)/bench/results.txt
	bash bench/size.sh | tee -a $(CURDIR)/bench/results.txt

## fuzz: fuzz the event decoder (FUZZTIME=10m for a long run)
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/events/

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
	rm -rf $(BIN) .aws-sam .tools

help:
	@grep -E '^## ' Makefile | sed 's/^## /  /'

# Multi-region and organization-wide deployment: see docs/MULTIACCOUNT.md.
# Both targets need the AWS CLI (aws) and credentials.
REGIONS          ?=
HOME_REGION      ?=
FORWARDER_STACK  ?= kms-autotagger-forwarder
MEMBER_STACKSET  ?= kms-autotagger-member
OU_IDS           ?=
STACKSET_REGIONS ?=
TAGGER_ROLE_ARN  ?=
MEMBER_TAG_KEYS  ?=
CALL_AS          ?= SELF
DRY_RUN          ?=

## deploy-forwarders: deploy deploy/region-forwarder.yaml to each of REGIONS="us-west-2 eu-west-1", forwarding to the tagger in HOME_REGION (default: the CLI's region)
deploy-forwarders:
	@command -v aws >/dev/null || { echo "deploy-forwarders needs the AWS CLI (aws) on PATH, with credentials for the tagger's account" >&2; exit 1; }
	@test -n "$(strip $(REGIONS))" || { echo 'name the regions: make deploy-forwarders REGIONS="us-west-2 eu-west-1" HOME_REGION=us-east-1' >&2; exit 1; }
	@home="$(HOME_REGION)"; home="$${home:-$$(aws configure get region || true)}"; \
	test -n "$$home" || { echo "set HOME_REGION to the region of the $(STACK) stack" >&2; exit 1; }; \
	for r in $(REGIONS); do \
	  if [ "$$r" = "$$home" ]; then echo "== $$r: skipped, the tagger's own rule sees this region's events"; continue; fi; \
	  echo "== $$r: stack $(FORWARDER_STACK), forwarding to the default event bus in $$home"; \
	  aws cloudformation deploy --template-file deploy/region-forwarder.yaml --stack-name "$(FORWARDER_STACK)" \
	    --region "$$r" --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
	    --parameter-overrides HomeRegion="$$home"; \
	done

## deploy-member-stackset: create the service-managed StackSet of deploy/member-role.yaml and its instances in OU_IDS="ou-..." for STACKSET_REGIONS (default HOME_REGION), the role at MEMBER_ROLE_PATH (default /kms-autotagger/); DRY_RUN=1 only prints the commands
deploy-member-stackset:
	@command -v aws >/dev/null || { echo "deploy-member-stackset needs the AWS CLI (aws) on PATH, with credentials of the organization's management account or a StackSets delegated administrator (CALL_AS=DELEGATED_ADMIN)" >&2; exit 1; }
	@test -n "$(strip $(OU_IDS))" || { echo 'name the organizational units: make deploy-member-stackset OU_IDS="ou-ab12-cdef3456" HOME_REGION=us-east-1 TAGGER_ROLE_ARN=arn:...' >&2; exit 1; }
	@run() { printf '%q ' "$$@"; echo; if [ -z "$(DRY_RUN)" ]; then "$$@"; fi; }; \
	home="$(HOME_REGION)"; home="$${home:-$$(aws configure get region || true)}"; \
	test -n "$$home" || { echo "set HOME_REGION to the region of the $(STACK) stack" >&2; exit 1; }; \
	role="$(TAGGER_ROLE_ARN)"; \
	if [ -z "$$role" ]; then \
	  name=$$(aws cloudformation describe-stack-resource --region "$$home" --stack-name "$(STACK)" \
	    --logical-resource-id AutoTaggerFunctionRole --query StackResourceDetail.PhysicalResourceId --output text) && \
	  role=$$(aws iam get-role --role-name "$$name" --query Role.Arn --output text) || \
	  { echo "set TAGGER_ROLE_ARN to the ARN of the tagger function's role (could not read it from stack $(STACK) in $$home with these credentials)" >&2; exit 1; }; \
	fi; \
	central=$$(echo "$$role" | cut -d: -f5); \
	regions="$(strip $(STACKSET_REGIONS))"; regions="$${regions:-$$home}"; \
	case " $$regions " in *" $$home "*) ;; *) echo "note: $$home is not in STACKSET_REGIONS: the member role is made only by the stack in $$home, so it must already exist or be added" >&2;; esac; \
	params=(ParameterKey=TaggerRoleArn,ParameterValue="$$role" ParameterKey=CentralAccountId,ParameterValue="$$central" \
	  ParameterKey=HomeRegion,ParameterValue="$$home" ParameterKey=RoleName,ParameterValue="$(or $(MEMBER_ROLE_NAME),kms-autotagger-member)" \
	  ParameterKey=RolePath,ParameterValue="$(or $(MEMBER_ROLE_PATH),/kms-autotagger/)"); \
	if [ -n "$(MEMBER_ROLE_EXTERNAL_ID)" ]; then params+=(ParameterKey=ExternalId,ParameterValue="$(MEMBER_ROLE_EXTERNAL_ID)"); fi; \
	keys="$(MEMBER_TAG_KEYS)"; if [ -n "$$keys" ]; then params+=(ParameterKey=TagKeys,ParameterValue="$${keys//,/\\,}"); fi; \
	if aws cloudformation describe-stack-set --region "$$home" --call-as "$(CALL_AS)" --stack-set-name "$(MEMBER_STACKSET)" >/dev/null 2>&1; then \
	  echo "== stack set $(MEMBER_STACKSET) exists: adding instances only (change its parameters with aws cloudformation update-stack-set)"; \
	else \
	  echo "== creating stack set $(MEMBER_STACKSET) (member role trusts $$role)"; \
	  run aws cloudformation create-stack-set --region "$$home" --call-as "$(CALL_AS)" --stack-set-name "$(MEMBER_STACKSET)" \
	    --description "kms-autotagger member role and KMS event forwarding" \
	    --template-body file://deploy/member-role.yaml --capabilities CAPABILITY_NAMED_IAM \
	    --permission-model SERVICE_MANAGED --auto-deployment Enabled=true,RetainStacksOnAccountRemoval=false \
	    --parameters "$${params[@]}"; \
	fi; \
	ous="$(strip $(OU_IDS))"; \
	echo "== stack instances in $$ous, regions $$regions"; \
	run aws cloudformation create-stack-instances --region "$$home" --call-as "$(CALL_AS)" --stack-set-name "$(MEMBER_STACKSET)" \
	  --deployment-targets OrganizationalUnitIds="$${ous// /,}" --regions $$regions \
	  --operation-preferences RegionConcurrencyType=PARALLEL,MaxConcurrentPercentage=25,FailureTolerancePercentage=10

## soak: the reliability tests at length: fault injection over FAULT_EVENTS events (1000; FAULT_SEED=N replays a run) and the burst, see docs/RELIABILITY.md
.PHONY: soak
soak: tools
	FAULT_EVENTS=$(or $(FAULT_EVENTS),1000) FAULT_SEED=$(FAULT_SEED) $(GO) test -race -count=1 -timeout 30m -v -run 'TestFaultInjection|TestBurst' ./internal/app/
