# The minor protection platform. `make help` lists the targets.
# The README's two commands: `make up` (run everything on the embedded default) and `make test`.

SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
STAMP := .venv/.installed
export PATH := $(CURDIR)/.cache/bin:$(PATH)
# The local broker's port (scripts/kafka.sh reads KAFKA_PORT too); override to run beside another copy.
export KAFKA_PORT ?= 9092

help: ## list the targets
	@grep -hE '^[a-z][a-z0-9-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt gen/python/pyproject.toml pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e gen/python -e .
	touch $(STAMP)

setup: $(STAMP) ## create .venv with the pinned dependencies (once; again when requirements change)

tools: ## build buf, helm and gitleaks (Go module proxy) into .cache/bin, install Chromium (Debian) for browser tests
	scripts/install-buf.sh & buf=$$!; scripts/install-helm.sh & helm=$$!; scripts/install-gitleaks.sh & leaks=$$!; \
	scripts/install-browser.sh; wait $$buf && wait $$helm && wait $$leaks

proto: setup ## regenerate gen/python from proto/ (never edit gen/ by hand)
	scripts/gen-proto.sh

kafka: setup ## fetch and start the local single-node Kafka broker, create the topics
	scripts/kafka.sh start
	KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$(KAFKA_PORT) $(PY) -m platform_runtime.topics

postgres: ## install (Debian's packages) and start the local PostgreSQL used by the tests
	scripts/postgres.sh install
	scripts/postgres.sh start

up: setup kafka ## run every service and the portal on SQLite with the pilot town seeded (Ctrl-C stops)
	$(PY) -m platform_runtime.local_stack up

reset: ## stop Kafka and delete every local database, key and log under data/
	-scripts/kafka.sh stop
	rm -rf data

lint: setup ## ruff (lint and format check)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck: setup ## mypy --strict over the runtime, services, gateway and tests
	.venv/bin/mypy platform_runtime services gateway tests bench

buf: tools ## buf lint and buf breaking against main
	buf lint
	if git rev-parse --verify -q main >/dev/null; then buf breaking --against '.git#branch=main'; fi

unit: setup ## unit tests (no servers)
	.venv/bin/pytest -q -m "not integration and not e2e and not faults"

integration: setup postgres kafka ports ## integration tests against real PostgreSQL and Kafka
	.venv/bin/pytest -q -m integration

e2e: setup postgres kafka ports ## end-to-end tests: every service as its own process, a real browser
	.venv/bin/pytest -q -m e2e

secrets: tools ## gitleaks over the whole git history (a person-checked false positive goes in .gitleaksignore)
	gitleaks git --no-banner --redact .

ports: ## keep the test stacks' fixed ports out of the kernel's ephemeral range (best effort; needs root)
	scripts/reserve-ports.sh

test: setup tools postgres kafka ports lint typecheck buf secrets ## everything CI runs: lint, types, buf, secret scan, all tests
	.venv/bin/pytest -q

faults: setup postgres kafka ports ## the fault suite at full size (2,000+ reports through broker, service and database faults)
	FAULTS_REPORTS=$${FAULTS_REPORTS:-2000} FAULTS_RATE=$${FAULTS_RATE:-6} FAULTS_BROKER_DOWN=$${FAULTS_BROKER_DOWN:-15} \
	  FAULTS_POSTGRES_DOWN=$${FAULTS_POSTGRES_DOWN:-10} FAULTS_SETTLE=$${FAULTS_SETTLE:-600} \
	  .venv/bin/pytest -q -s -m faults tests/faults

bench: setup postgres kafka ## benchmarks: each figure printed beside its baseline
	$(PY) -m bench

bench-smoke: setup postgres kafka ## issue #16's benchmarks and the portal's (#14) at a reduced size for CI: fails on errors, never on timing
	BENCH_CALLS=40 BENCH_RELAY_EVENTS=50 BENCH_MATCH_CHILDREN=500 BENCH_MATCH_REPORTS=100 BENCH_RATE=20 \
	  BENCH_SECONDS=5 BENCH_REPORTS=40 \
	  $(PY) -m bench registry_call relay_wakeup matching_quality crisis_to_inbox reporting_throughput
	BENCH_PORTAL_CHILDREN=1000 BENCH_PORTAL_USERS=5 BENCH_PORTAL_REQUESTS=5 $(PY) -m bench portal_pages

.PHONY: help setup tools proto kafka postgres ports up reset lint typecheck buf secrets unit integration e2e test faults bench bench-smoke
