# Lockstep — every task a developer or CI runs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CONTROLPLANE := e2e/controlplane
export CLUSTER_DIR ?= $(CURDIR)/e2e/.cluster
# Node 24 LTS for every recipe: `npm ci` installs the official binary (package.json's node-linux-*
# optional dependencies) as node_modules/.bin/node; first on PATH, it also runs npm, npx and the
# scripts' `node -e` (npm scripts and npx put it first on their own).
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: help install build typecheck test test-unit e2e imports manifests check-manifests version run \
        cluster-up cluster-down quickstart controlplane-binaries e2e-kind lint-kind bench bench-node bench-scale \
        faults image docker-image

help: ## List the targets
	@awk -F':.*## ' '/^[a-z-]+:.*## /{printf "  %-22s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.package-lock.json ## Install the Node dependencies (npm ci)

build: install ## Compile the operator and CLI to dist/
	npm run build

typecheck: install ## tsc --noEmit
	npx tsc --noEmit

test: install ## The whole test run (README command; what CI runs): ends with "N passed, N failed"
	bash scripts/test.sh

test-unit: install ## Unit tests only
	npm run test:unit

e2e: install ## E2E suite against $$KUBECONFIG (run `make cluster-up` first for a local cluster)
	npm run test:e2e

imports: install ## Regenerate imports/ with cdk8s import (offline)
	bash scripts/gen-imports.sh

manifests: install ## Render manifests/ from the cdk8s app
	npm run manifests

version: install ## Set the one version (package.json, chart, manifests' image tag): make version VERSION=x.y.z
	bash scripts/set-version.sh $(VERSION)

check-manifests: install ## Fail when manifests/ or imports/ differ from what their generators produce
	bash scripts/check-manifests.sh
	bash scripts/gen-imports.sh --check

controlplane-binaries: ## Build (or reuse) etcd, kube-apiserver, kube-controller-manager, cert-manager
	$(CONTROLPLANE)/build.sh

cluster-up: ## Start the local control plane; prints export KUBECONFIG=... (ENCRYPTION=lockstep: Secrets encrypted in etcd by Lockstep's KMS v2 plugin)
	$(CONTROLPLANE)/cluster-up.sh

cluster-down: ## Stop the local control plane and remove its state
	$(CONTROLPLANE)/cluster-down.sh

quickstart: install ## Lockstep on the local cluster with its node, ending with a green `kubectl lockstep status -n demo` (starts the cluster when KUBECONFIG is unset)
	bash examples/quickstart/run.sh

image: install ## Operator image for linux/amd64 + linux/arm64, no Docker: dist/image/oci (OCI layout) + per-arch tarballs
	bash e2e/images/release.sh --out dist/image

# Users with Docker: the same OCI labels, from the same sources as `make image`.
docker-image: ## docker build the operator image (needs Docker; IMAGE=repo:tag to name it)
	docker build \
	  --build-arg VERSION=$$(node -p 'require("./package.json").version') \
	  --build-arg REVISION=$$(git rev-parse HEAD) \
	  --build-arg CREATED=$$(date -u -d @$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct)} +%Y-%m-%dT%H:%M:%SZ) \
	  --tag $${IMAGE:-ghcr.io/lockstep-dev/lockstep-operator:$$(node -p 'require("./package.json").version')} .

run: install ## Run the operator against $$KUBECONFIG, or a local control plane when none is set
	bash scripts/run.sh

e2e-kind: install ## E2E suite on a kind cluster (needs Docker)
	bash scripts/e2e-kind.sh

lint-kind: install ## Lint the kind path (what can be checked without Docker)
	bash scripts/lint-kind.sh

bench: install ## Benchmarks (crypto operations against raw node:crypto)
	npx tsx bench/crypto.ts

bench-node: install ## Local node figures: pod start, Secret update → file in a pod (needs make cluster-up)
	npx tsx bench/node.ts

faults: install ## Fault suite on the local cluster: control-plane processes killed, network cut; recovery table (needs make cluster-up; ARGS="--services 100")
	npx tsx e2e/faults/main.ts $(ARGS)

bench-scale: install ## Operator at scale vs a bare concurrent apply: time, RSS, latency, writes at rest (needs make cluster-up; ARGS="--services 10000")
	npx tsx bench/scale.ts $(ARGS)
