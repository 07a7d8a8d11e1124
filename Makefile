# Two commands on a fresh machine (Python 3.11 and make present):
#   make drill   the main job: start the embedded staging, run the suites against it, write reports/
#   make test    the project's own tests (what CI runs)
# Both bootstrap .venv themselves.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
NODE_STAMP := node_modules/.installed-$(shell cat package.json package-lock.json 2>/dev/null | cksum | cut -d' ' -f1)
# the newest wrangler 4.x with the Node 22 it needs (npm's node@22 package), for the compatibility tests
NODE22 := clients/node22
NODE22_STAMP := $(NODE22)/node_modules/.installed-$(shell cat $(NODE22)/package.json $(NODE22)/package-lock.json 2>/dev/null | cksum | cut -d' ' -f1)
# Outer deadline for any pytest run (xdist can hang on a crashed worker: shared/notes/ecosystem.md)
DEADLINE ?= 1800
PORT ?= 8787
STAGING_RUNTIME ?= python

.PHONY: help venv clients browser test drill verify staging bench bench-real-time clean

help:
	@echo "make drill    run the suites against the embedded staging (the main job)"
	@echo "              STAGING_RUNTIME=workerd: the staging runs the reference Worker's code in workerd"
	@echo "              WORKER_DIR=path/to/worker: drill your own worker, locally, first (in workerd)"
	@echo "              BOOKSTRACK_TARGET=staging DRILL_SCENARIOS=error-spike DEADLINE=3600: the real staging"
	@echo "make test     run the project's own tests (selftests/)"
	@echo "make verify   pytest -m verify (TARGET=production EXPECT_VERSION=... for a real target)"
	@echo "make staging  serve the embedded staging on 127.0.0.1:$(PORT) (Ctrl-C to stop; STAGING_RUNTIME=workerd)"
	@echo "make clients  install the real Cloudflare clients checked by the compatibility tests"
	@echo "              (wrangler 4.86 on this node, the newest wrangler 4.x on Node 22, the cloudflare SDK)"
	@echo "make bench    run the benchmarks and print their figures"
	@echo "make bench-real-time   pytest -m verify at time scale 1 against the embedded staging (~10 minutes)"
	@echo "make clean    remove the virtual environment, node_modules and reports"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python 3.11 is required (python3.11 or python3 on PATH)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { echo "error: $(PYTHON) is older than 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[clients]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	rm -f node_modules/.installed-* && touch $@

# A machine that cannot install it (offline, no Node 22 build for the platform) still gets the rest: the
# tests of that wrangler then skip, saying so.
$(NODE22_STAMP): $(NODE22)/package.json $(NODE22)/package-lock.json
	@npm ci --prefix $(NODE22) --no-audit --no-fund --loglevel=error && \
		rm -f $(NODE22)/node_modules/.installed-* && touch $@ || \
		echo "the newest wrangler on Node 22 could not be installed ($(NODE22)): its compatibility tests will be skipped"

clients: $(STAMP) $(NODE_STAMP) $(NODE22_STAMP)

# headless Chromium (Debian) for the report checks; a machine without it gets it installed once
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium from Debian (once)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || \
		{ apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; } || \
		echo "chromium could not be installed: the browser checks will say so"; }

# the selftests need no embedded staging of their own (-p no:bookstrack): the runs they start load the plugin
test: clients browser
	timeout $(DEADLINE) $(BIN)/python -m pytest selftests -n 2 --dist loadgroup -q -p no:bookstrack

# verify and triage against the healthy embedded staging, then the whole drill matrix, then the reports
# (the pytest result is the target's result; the reports are written whatever it was).
# Another target: BOOKSTRACK_TARGET=staging make drill DRILL_SCENARIOS="error-spike" (a -k expression
# over the scenarios of src/bookstrack_rollback/drill/scenarios.toml; at time scale 1.0 one drill takes ~10-15 minutes)
# `allure run` reads the results as pytest writes them and judges each drill against its budgets (the quality
# gate of allurerc.mjs): it prints which drill broke which budget and keeps that in reports/allure-drill.zip,
# from which both Allure reports are generated. Its own exit status is the gate's; pytest's is kept apart.
# STAGING_RUNTIME=workerd: the embedded staging runs the reference Worker's own code in workerd (the README
# says why python is the default). WORKER_DIR=path: drill your own worker, locally, first (workerd implied).
DRILL_PYTEST = timeout $(DEADLINE) $(BIN)/python -m pytest tests drills -m "verify or triage or drill" \
	$(if $(DRILL_SCENARIOS),-k "not test_drill or $(DRILL_SCENARIOS)") --alluredir=reports/allure-results -p no:cacheprovider -q \
	--staging-runtime $(STAGING_RUNTIME) $(if $(WORKER_DIR),--drill-worker-dir "$(abspath $(WORKER_DIR))") \
	$(if $(WORKER_ENV),--drill-worker-env "$(WORKER_ENV)")
drill: venv $(NODE_STAMP)
	rm -rf reports/allure-results reports/allure-report reports/allure-report-single reports/allure-drill.zip reports/.pytest-status
	@node_modules/.bin/allure run -c allurerc.mjs --ignore-logs --results-dir reports/allure-results --dump reports/allure-drill -- \
		sh -c '$(DRILL_PYTEST); echo $$? > reports/.pytest-status'; \
	status=$$(cat reports/.pytest-status 2>/dev/null || echo 1); \
	if [ -f reports/allure-drill.zip ]; then results="--dump reports/allure-drill.zip"; \
	else echo "allure run wrote no reports/allure-drill.zip: the reports are generated without the quality gate"; \
		results=reports/allure-results; fi; \
	node_modules/.bin/allure generate $$results -c allurerc.mjs > reports/.allure.log 2>&1 && \
	node_modules/.bin/allure generate $$results -c allurerc.single.mjs >> reports/.allure.log 2>&1 \
		|| { echo "allure generate failed: see reports/.allure.log"; status=1; }; \
	$(BIN)/python -m bookstrack_rollback.reporting --reports reports || status=1; \
	echo; echo "Reports:"; \
	echo "  Allure (serve it: node_modules/.bin/allure open reports/allure-report): reports/allure-report/index.html"; \
	echo "  Allure, one file for a ticket: file://$(CURDIR)/reports/allure-report-single/index.html"; \
	echo "  which drill broke which budget: the Allure report's Quality Gates tab, reports/allure-report/quality-gate.json"; \
	echo "  drill records: reports/drills/*.json, history: reports/history/drills.jsonl"; \
	exit $$status

# after a deploy or a rollback: make verify TARGET=production [EXPECT_VERSION=1.9.0]
TARGET ?= embedded
verify: venv
	rm -rf reports/allure-results
	timeout $(DEADLINE) $(BIN)/python -m pytest tests -m verify --target $(TARGET) \
		$(if $(EXPECT_VERSION),--expect-version $(EXPECT_VERSION)) --alluredir=reports/allure-results -p no:cacheprovider

staging: venv $(if $(filter workerd,$(STAGING_RUNTIME)),$(NODE_STAMP))
	$(BIN)/python -m bookstrack_rollback.staging --port $(PORT) --users-rate 50 --runtime $(STAGING_RUNTIME)

bench: venv
	@for b in benchmarks/bench_*.py; do [ $$b = benchmarks/bench_real_time.py ] && continue; \
		echo "== $$b"; $(BIN)/python $$b || exit 1; done

bench-real-time: venv
	$(BIN)/python benchmarks/bench_real_time.py

clean:
	rm -rf $(VENV) node_modules $(NODE22)/node_modules reports/allure-results reports/allure-report reports/drills
