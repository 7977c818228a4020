# Nudge: every target sets itself up (virtualenv, dependencies, generated code).
PYTHON_BOOT ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
PROTOS      := $(shell find proto -name '*.proto')

.PHONY: venv run test proto proto-check bench bench-segments k8s-check workspace clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	# the repository root and the generated proto code are importable everywhere
	printf '%s\n%s\n' "$(CURDIR)" "$(CURDIR)/gen" > $$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/nudge-repo.pth
	touch $(STAMP)

venv: $(STAMP)

## proto: regenerate gen/ from proto/ (generated code is committed)
proto: $(STAMP)
	$(PY) -m kit.protogen gen

## proto-check: fail when gen/ is stale or missing
proto-check: $(STAMP)
	$(PY) -m kit.protogen --check gen

## run: the whole platform on the embedded PostgreSQL and Redis
run: $(STAMP) proto-check
	$(PY) -m devserver

## test: the full suite on real PostgreSQL and Redis
test: $(STAMP) proto-check
	$(PY) -m pytest $(PYTEST_ARGS)

## bench: ingest benchmark with same-run baselines
bench: $(STAMP)
	$(PY) -m bench.ingest $(BENCH_ARGS)

## bench-segments: segment service benchmark (throughput, latency, backfill) with same-run baselines
bench-segments: $(STAMP)
	$(PY) -m bench.segments $(BENCH_ARGS)

## bench-dispatch: dispatch benchmark (fatigue decisions/s, webhook sends/s) with same-run baselines
.PHONY: bench-dispatch
bench-dispatch: $(STAMP)
	$(PY) -m bench.dispatch $(BENCH_ARGS)

## bench-timers: journey timer benchmark (fired/s of timers due at once, steady lateness) with a same-run baseline
.PHONY: bench-timers
bench-timers: $(STAMP)
	$(PY) -m bench.timers $(BENCH_ARGS)

## bench-metrics: metrics benchmark (facts ingested/s, a journey's stats over 10M facts) with same-run baselines
.PHONY: bench-metrics
bench-metrics: $(STAMP)
	$(PY) -m bench.metrics $(BENCH_ARGS)

## bench-smoke: every benchmark at a tiny size (seconds each), as the test suite runs them
.PHONY: bench-smoke
bench-smoke: $(STAMP)
	$(PY) -m pytest tests/bench $(PYTEST_ARGS)

## workspace: create a workspace and print its keys (NAME=…)
workspace: $(STAMP)
	$(PY) -m gateway.workspaces create "$(NAME)"

k8s-check: $(STAMP)
	$(PY) -m pytest tests/k8s

clean:
	rm -rf $(VENV)
