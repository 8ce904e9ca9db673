# replayflow — developer entry points. `make help` lists them.
#
# The local broker is a real single-node Apache Kafka started without Docker by
# compose/kafka/kafka.sh (data in .kafka/). Set KAFKA_BOOTSTRAP=host:port to use an
# existing cluster instead: then nothing is started or stopped. KAFKA_PORT moves the
# local broker off 9092. BROKERS=3 makes `up` (and test, demo, bench) start a local
# cluster of three KRaft nodes on KAFKA_PORT, +2, +4 (~1 GB of memory for the three
# JVMs); `topics apply` then gives every topic replication 3, min.insync.replicas 2.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

KAFKA_PORT ?= 9092
export KAFKA_PORT
BROKERS ?= 1
export BROKERS
# `make chaos`: SCENARIO=all or one name (`make chaos SCENARIO=list` lists them).
SCENARIO ?= all
CHAOS_ARGS ?=
# A KAFKA_BOOTSTRAP from the user's environment (or the make command line) means an
# external cluster. kafka.sh always gets the user's value, never the local default, so
# it starts a broker only when no cluster was given.
USER_BOOTSTRAP := $(strip $(KAFKA_BOOTSTRAP))
BOOTSTRAP := $(if $(USER_BOOTSTRAP),$(USER_BOOTSTRAP),127.0.0.1:$(KAFKA_PORT))
KAFKA := KAFKA_BOOTSTRAP='$(USER_BOOTSTRAP)' compose/kafka/kafka.sh
# demo, test and bench run through `kafka.sh run --`: it starts the broker if none
# runs, exports KAFKA_BOOTSTRAP to the command, and afterwards (also on failure or
# Ctrl-C) stops the broker if it started it. A broker from `make up` stays up.
APPLY := $(BIN)/replayflow topics apply

.PHONY: help venv compiled uncompiled up down status logs kafka-reset demo test test-unit lint bench chaos clean distclean browser kcat

help: ## list the targets
	@echo "replayflow: durable workflows for Python, event-sourced on Apache Kafka"
	@echo
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) \
	  | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'
	@echo
	@echo "  KAFKA_BOOTSTRAP=host:port  use an existing cluster (nothing is started)"
	@echo "  KAFKA_PORT=9092            port of the local broker"
	@echo "  BROKERS=3                  up/test/...: a local three-node cluster instead of one broker"
	@echo "  SCENARIO=broker-restart    chaos: run one scenario (default all; SCENARIO=list)"
	@echo "  PYTEST_ARGS='-k topics'    extra pytest arguments for test / test-unit"

venv: $(VENV_STAMP) ## create .venv (python3.11) with replayflow and dev tools; reinstalls when pyproject.toml changes

# Each step says what it does first: the install takes about a minute and pip -q is
# silent meanwhile.
$(VENV_STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: python3.11 (or python3 >= 3.11) not found" >&2; exit 1; }
	@[ -x $(BIN)/python ] || { echo "venv: creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "venv: upgrading pip"
	@$(BIN)/python -m pip install -q --upgrade pip
	@echo "venv: installing replayflow and its dev tools into $(VENV) (about a minute) ..."
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@echo "venv: checking installed requirements"
	@$(BIN)/python -m pip check
	@touch $@
	@echo "venv: ready ($(BIN)/replayflow, $(BIN)/python)"

# The fold's decision modules as C extensions (setup.py): built beside their sources
# when one of them changed; REPLAYFLOW_PURE=1 removes them and runs the plain sources.
COMPILED_SOURCES := $(wildcard src/replayflow/core/decide/*.py) \
  $(addprefix src/replayflow/core/,decision.py driver.py evolve.py payloads.py state.py)
COMPILED_STAMP := build/.compiled

ifneq ($(filter-out 0,$(REPLAYFLOW_PURE)),)
compiled: uncompiled ## build the fold's core modules with mypyc (setup.py; REPLAYFLOW_PURE=1: remove them instead)
	@echo "compiled: REPLAYFLOW_PURE is set, the plain sources run"
else
compiled: $(COMPILED_STAMP)
endif

$(COMPILED_STAMP): $(VENV_STAMP) $(COMPILED_SOURCES) setup.py
	@echo "compiled: building the fold's core modules with mypyc (setup.py; about 20 s) ..."
	@mkdir -p build
	@REPLAYFLOW_COMPILE_STRICT=1 $(BIN)/python setup.py -q build_ext --inplace >build/compile.log 2>&1 \
	  || { cat build/compile.log; echo "compiled: mypyc failed (build/compile.log)" >&2; exit 1; }
	@# An extension whose C did not change is copied with its old time: dated now, as
	@# the stamp, it is not taken for older than a source touched without a change.
	@find src -name '*.so' -exec touch {} +
	@touch $@

uncompiled: ## remove the compiled extensions: the plain Python sources run
	@find src -name '*.so' -delete
	@rm -f $(COMPILED_STAMP)

up: venv ## start the local Kafka broker, or BROKERS=3 nodes (if not running), and create the topics
	@$(KAFKA) up
	@KAFKA_BOOTSTRAP=$(BOOTSTRAP) $(APPLY)

down: ## stop the local Kafka broker or cluster nodes by pid (data stays in .kafka/)
	@$(KAFKA) down

status: ## is the broker (every cluster node) running and answering?
	@$(KAFKA) status

logs: ## last lines of the local broker's log
	@$(KAFKA) logs

kafka-reset: ## stop the local broker and delete all its data (.kafka/)
	@$(KAFKA) reset

demo: venv compiled examples/demo.py ## run examples/demo.py on the local broker (started for it, then stopped)
	@$(KAFKA) run -- bash -c '$(APPLY) && $(BIN)/python examples/demo.py'

browser: ## Debian's chromium + chromedriver for the UI tests (apt-get, only when missing)
	@[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

kcat: ## kcat for the other-languages test (apt-get, only when missing); node/npm come with the OS
	@command -v kcat >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat; }

test: venv compiled browser kcat ## all tests on a real broker (one that runs already is used and left running)
	@$(KAFKA) run -- bash -c '$(APPLY) && $(BIN)/python -m pytest $(PYTEST_ARGS)' \
	  || { rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests: that is a failure" >&2; exit $$rc; }

test-unit: venv compiled ## the tests that need no broker (all but the `kafka`-marked ones)
	@$(BIN)/python -m pytest -m 'not kafka' $(PYTEST_ARGS) \
	  || { rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests: that is a failure" >&2; exit $$rc; }

.PHONY: record-histories
record-histories: venv compiled ## rewrite tests/fixtures/histories/*.json (on purpose only: review the diff)
	$(BIN)/python -m tests.fixtures.record

lint: venv ## ruff check, ruff format --check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: venv compiled benchmarks/run.py ## run benchmarks/run.py on the local broker (started for it, then stopped)
	@$(KAFKA) run -- bash -c '$(APPLY) && $(BIN)/python benchmarks/run.py'
chaos: venv compiled ## kill orchestrators, workers and brokers under load; verdicts + .data/chaos/*.json (minutes)
	@$(BIN)/python -m benchmarks.chaos $(SCENARIO) $(CHAOS_ARGS)

bench-streams: venv compiled benchmarks/streams.py ## durable streams: write-to-reader latency at 1,000 values/s, values/s (benchmarks/streams.py)
	@$(KAFKA) run -- bash -c '$(APPLY) && $(BIN)/python benchmarks/streams.py $(STREAMS_ARGS)'

.PHONY: bench-txn
bench-txn: venv compiled ## a transaction's time with the offsets sent before the records, and after (benchmarks/txn_order.py)
	@$(KAFKA) run -- $(BIN)/python benchmarks/txn_order.py $(TXN_ARGS)
.PHONY: bench-steps
bench-steps: venv compiled ## the worker's hand-off of a plain step to a thread: CPU per call, StepThreads against run_in_executor (no broker)
	@$(BIN)/python benchmarks/steps_pool.py $(STEPS_ARGS)
.PHONY: bench-replay
bench-replay: venv compiled benchmarks/replay.py ## replay() of 250, 1,000 and 5,000-step histories (no broker); 5,000 in <= 2 s
	@$(BIN)/python benchmarks/replay.py $(REPLAY_ARGS)
bench-scale: venv compiled benchmarks/scale.py ## 50k waiting + 200k queued instances, one orchestrator (benchmarks/scale.py)
	@$(KAFKA) run -- bash -c '$(APPLY) && $(BIN)/python benchmarks/scale.py $(SCALE_ARGS)'
.PHONY: bench-kafka-triggers
bench-kafka-triggers: venv compiled ## a Kafka topic trigger: records/s routed to starts (goal >= 10,000/s) and its lag
	@$(KAFKA) run -- bash -c '$(BIN)/python benchmarks/triggers_kafka.py $(TRIGGER_BENCH_ARGS)'
bench-rebuild: venv compiled benchmarks/rebuild.py ## 1,000,000 history events re-folded into fresh state (benchmarks/rebuild.py)
	@$(KAFKA) run -- $(BIN)/python benchmarks/rebuild.py $(REBUILD_ARGS)
.PHONY: bench-schedules bench-triggers
bench-schedules: venv compiled benchmarks/triggers_schedules.py ## 100k schedules firing every 5 min on one orchestrator: fire lag, RSS (SCHEDULES_ARGS='--schedules 10000')
	@$(KAFKA) run -- bash -c '$(APPLY) && $(BIN)/python benchmarks/triggers_schedules.py $(SCHEDULES_ARGS)'
bench-triggers: bench-schedules bench-kafka-triggers ## the trigger benchmarks: schedules, then Kafka topic triggers

examples/demo.py benchmarks/run.py:
	@echo "error: $@ is not written yet" >&2; exit 1

clean: ## stop the broker; delete its data, .data/ and caches (keeps .venv and the Kafka jars)
	@$(KAFKA) down
	rm -rf .kafka .data .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
	find src -name '*.so' -delete
	find . -name __pycache__ -type d -not -path './.venv/*' -prune -exec rm -rf {} +

distclean: clean ## clean, and also delete .venv and compose/kafka/libs
	rm -rf $(VENV) compose/kafka/libs src/*.egg-info
