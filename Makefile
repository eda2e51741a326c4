# One-word entry points. `make test` is the command CI runs (see .ci/run) and the README documents.
PYTHON ?= $(CURDIR)/.venv/bin/python
VENV_STAMP := .venv/.installed
PYTEST := $(PYTHON) -m pytest

.PHONY: demo demo-down e2e-deps help venv test check unit integration model-server chart crds lint bench-operator clean

help:
	@echo "make venv          create .venv with the project and its dev/server extras"
	@echo "make test          every check and test tier (the CI command)"
	@echo "make check         generated CRDs up to date, import layering, lint"
	@echo "make unit          pure unit tests and doctests"
	@echo "make integration   the operator against a real kube-apiserver started on 127.0.0.1"
	@echo "make model-server  model server tests (starts its own redis-server)"
	@echo "make chart         Helm chart: lint, render in both RBAC modes and validate, RBAC, alert rules, CRD copy"
	@echo "make demo          a local cluster, the chart, a healthy canary promoted and a slow one rolled back"
	@echo "make demo-down     tear the demo cluster down and restore the host"
	@echo "make crds          regenerate crds/ and the chart's copy from the API models"

$(VENV_STAMP): pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install --quiet --upgrade pip
	.venv/bin/pip install --quiet -e '.[server,dev]'
	touch $@

venv: $(VENV_STAMP)

check: venv
	$(PYTHON) -m modelpilot.api.crdgen --check
	cd $(CURDIR) && .venv/bin/lint-imports
	.venv/bin/ruff check operator tests/unit tests/integration

unit: venv
	$(PYTEST) tests/unit --doctest-modules operator/modelpilot -q

integration: venv
	$(PYTEST) tests/integration -q

model-server: venv
	$(PYTEST) tests/model_server -q

chart: venv
	PYTHON=$(PYTHON) bash charts/check.sh

test: check unit model-server chart integration

crds: venv
	$(PYTHON) -m modelpilot.api.crdgen --write

bench-operator: venv
	$(PYTHON) benchmarks/operator_latency.py

clean:
	rm -rf .venv .pytest_cache

# End-to-end scenarios on a real cluster: the local one of e2e/cluster/up.sh (brought up, and down again, by the
# session; root needed), or the one E2E_KUBECONFIG names. Not part of `make test`.
.PHONY: e2e
e2e: venv e2e-deps
	$(PYTEST) e2e --e2e -q -rA

# The main job: bring up the local cluster (or use E2E_KUBECONFIG / KUBECONFIG), build and load the images, install
# the chart, then v1 serves, a healthy v2 canary is promoted and a slower v3 is rolled back, with live progress lines
# and a summary table. The cluster stays up for a look around (`make demo-down` removes it).
demo: venv e2e-deps
	E2E_KEEP=1 MODELPILOT_DEMO=1 $(PYTEST) e2e --e2e -q -s -rN -p no:cacheprovider -k "test_a_ or test_b_ or test_c_"

demo-down:
	bash e2e/cluster/down.sh

e2e-deps:
	bash e2e/cluster/deps.sh
