# Single Window: the two commands are `make run` and `make test`; both set up what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
CACHE := $(HOME)/.cache/singlewindow
UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),$(CACHE)/uv-$(UV_VERSION)/bin/uv)
export UV
export UV_PYTHON_DOWNLOADS := never
VENV := .venv
PY := $(VENV)/bin/python
STACK := $(PY) deploy/local/stack.py
# Commands that talk to the local stack's Kafka run as its admin principal (TLS, SCRAM);
# with KAFKA_BOOTSTRAP_SERVERS set, your own Kafka and credentials are used as they are. In a
# subshell where the stack is stopped afterwards: its settings would hide the local broker.
AS_ADMIN := [ -n "$$KAFKA_BOOTSTRAP_SERVERS" ] || { set -a; . "$${SW_LOCAL_VAR:-var}/credentials/admin.env"; set +a; };
PYTEST_ARGS ?=

.PHONY: help venv up down status clean lint test run demo bench dashboard-picture chaos-long schemas-release asyncapi browser screenshots

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(CACHE)/uv-$(UV_VERSION)/bin/uv:
	$(PYTHON) -m venv $(CACHE)/uv-$(UV_VERSION)
	$(CACHE)/uv-$(UV_VERSION)/bin/pip install -q uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

venv: $(VENV)/.synced ## virtual environment with the locked dependencies

up: venv ## start Kafka and FerretDB (built and cached on first use), create the topics
	$(STACK) up

down: venv ## stop what `make up` started; data stays in var/
	$(STACK) down

status: venv ## what runs
	$(STACK) status

clean: ## stop everything, remove var/ and the virtual environment
	-[ -x $(PY) ] && $(STACK) clean
	rm -rf var $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

lint: venv ## ruff on everything, mypy (strict) on the shared package and the CLI
	$(VENV)/bin/ruff check singlewindow singlewindow_cli services deploy tests bench examples
	$(VENV)/bin/ruff format --check singlewindow singlewindow_cli services deploy tests bench examples
	$(VENV)/bin/mypy singlewindow singlewindow_cli
	$(PY) -m deploy.k8s.kafka_users --check
	$(PY) -m singlewindow.asyncapi --check
	$(PY) -m deploy.k8s.manifests --check
	$(PY) -m deploy.monitoring.generate --check

# Debian's Chromium (and a CJK font) for the browser tests, installed when missing (as root, or
# through sudo): Playwright drives it; Playwright's own browser download is never used
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser: ## Debian's headless Chromium for the trader's window tests (installed when missing)
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium fonts-wqy-zenhei; }

screenshots: venv browser ## the README's pictures of the trader's window (docs/window/*.png)
	SW_SCREENSHOTS=docs/window $(PY) -m pytest -q tests/unit/test_window_browser.py

test: venv promtool browser ## the whole test suite on the real broker and database; stops what it started
	@mkdir -p var
	$(STACK) up --record var/test-started
	($(AS_ADMIN) $(PY) -m pytest $(PYTEST_ARGS)); rc=$$?; \
	  $(STACK) down --recorded var/test-started; exit $$rc

run: up ## the whole platform, locally: Kafka, FerretDB and every service (Ctrl-C stops them)
	@echo "window:   http://$${INTAKE_HOST:-127.0.0.1}:$${INTAKE_PORT:-8000}/ (the trader's web page; development sign-in)"
	@echo "API docs: http://$${INTAKE_HOST:-127.0.0.1}:$${INTAKE_PORT:-8000}/docs"
	@echo "metrics:  http://$${INTAKE_HOST:-127.0.0.1}:$${INTAKE_PORT:-8000}/metrics (intake)," \
	  "http://127.0.0.1:<port>/metrics for each agency (agencies.toml), 9104 aggregator, 9105 projector, 9107 bank, 9108 inspection, 9109 gate, 9110 webhooks;" \
	  "/livez and /readyz beside each"
	@echo "bank:     http://$${BANK_HOST:-127.0.0.1}:$${BANK_PORT:-8081}/v1/payments (simulated; docs at /docs)"
	@echo "station:  http://$${INSPECTION_HOST:-127.0.0.1}:$${INSPECTION_PORT:-8082}/v1/inspections/<order_id>/findings (docs at /docs)"
	@echo "gate:     http://$${GATE_HOST:-127.0.0.1}:$${GATE_PORT:-8083}/v1/gate-out (the port's gate; docs at /docs)"
	@echo "a token:  make token USCC=<uscc> (then: curl -H \"Authorization: Bearer \$$TOKEN\" ...)"
	@echo "          make inspector-token AGENCY=<agency> (an inspector's, for the station;"
	@echo "          AGENCY=port: a gate officer's, for the gate)"
	@echo "the CLI:  $(VENV)/bin/sw login --dev-uscc <uscc>, then sw submit FILE.json --watch, sw list (sw --help)"
	@echo "traces:   $(PY) -m singlewindow.tracing show <declaration id> (var/traces/; OTEL_TRACES_FILE= for none)"
	@mkdir -p var && $(PY) -m deploy.local.run --procfile > var/Procfile  # from agencies.toml
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH OTEL_TRACES_FILE="$${OTEL_TRACES_FILE-var/traces/{service\}.jsonl}" \
	  $(VENV)/bin/honcho start -f var/Procfile -d $(CURDIR)

chaos-long: venv ## the chaos test with 20,000 declarations (about half an hour)
	@mkdir -p var
	$(STACK) up --record var/test-started
	($(AS_ADMIN) $(PY) -m pytest tests/e2e/test_chaos.py -m slow -s); rc=$$?; \
	  $(STACK) down --recorded var/test-started; exit $$rc

bench: up ## benchmarks (not tests): Kafka's tools, a bare pipe and the platform, one table in var/bench/
	$(AS_ADMIN) $(PY) -m bench.run

dashboard-picture: up ## docs/operations/dashboard.png: the dashboard's queries on the platform under load (5 min)
	$(AS_ADMIN) $(PY) -m bench.dashboard_picture run

demo: up ## one sample declaration per outcome through the platform, results as a table
	$(AS_ADMIN) $(PY) -m deploy.local.demo

schemas-release: venv ## keep the current event schemas as released, with golden payloads
	$(PY) -m singlewindow.avro.release
	$(PY) -m tests.golden.refresh

asyncapi: venv ## regenerate docs/asyncapi.json (the event contract) from the topics, principals and schemas
	$(PY) -m singlewindow.asyncapi

.PHONY: token
token: venv ## a bearer token for the local intake, valid 1 h: make token USCC=<uscc>[,<uscc>] [SUB=<subject>]
	@$(PY) -m services.intake.devissuer token --uscc '$(USCC)' $(if $(SUB),--sub '$(SUB)')

.PHONY: inspector-token
inspector-token: venv ## an inspector's token for the local inspection station, valid 1 h: make inspector-token AGENCY=<agency> [SUB=<subject>]
	@$(PY) -m services.intake.devissuer inspector-token --agency '$(AGENCY)' $(if $(SUB),--sub '$(SUB)')

.PHONY: kafka-users
kafka-users: venv ## regenerate deploy/k8s/base/kafka-users.yaml (Strimzi) from singlewindow/security.py
	$(PY) -m deploy.k8s.kafka_users

.PHONY: promtool
promtool: venv ## fetch Prometheus' promtool (the rule tests' checker) from Debian's prometheus package into ~/.cache/singlewindow once (apt-get download, no install; built with Go where apt cannot)
	$(PY) -m deploy.monitoring.promtool

.PHONY: monitoring
monitoring: venv ## regenerate the alert rules, the dashboard and prometheus.yml from deploy/monitoring/settings.toml and agencies.toml
	$(PY) -m deploy.monitoring.generate

.PHONY: k8s
k8s: venv ## regenerate deploy/k8s/base/'s generated files from the topic catalog, agencies.toml and the principals
	$(PY) -m deploy.k8s.manifests
