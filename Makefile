# correlearn: the verbs. `make demo` and `make test` are all a fresh machine needs.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
export CORRELEARN_HOME ?= $(CURDIR)/.correlearn
# Two cores here: more threads than cores only adds contention.
export OMP_NUM_THREADS ?= 2

.PHONY: setup test demo bench bench-gpu ui lint clean-workspace

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -e '.[test]'
	rm -f $(VENV)/.installed-*; touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

demo: setup
	$(BIN)/correlearn flow run demo --config data_specs/demo.yaml

bench: setup
	$(BIN)/python bench/data_throughput.py
	$(BIN)/python bench/label_propagation.py
	$(BIN)/python bench/mining.py
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/pretext_eval.py
	$(BIN)/python bench/scale.py --quick
	$(BIN)/python bench/gpu.py

# One GPU, under 8 minutes; without a GPU it checks that every model builds and steps on the CPU.
bench-gpu: setup
	$(BIN)/python bench/gpu.py

# The learning bench: every method on real video, scored on held-out sequences (about 48 minutes).
.PHONY: learning
learning: setup
	$(BIN)/python bench/learning.py

# The fault suite: the real CLI against bad input, kills, signals, gc, dead servers.
.PHONY: faults
faults: setup
	$(BIN)/python bench/faults.py

# The documentation site (mkdocs.yml, docs/): built into site/, every warning an error.
.PHONY: docs docs-serve
docs: setup
	$(BIN)/mkdocs build --strict --site-dir site

docs-serve: setup
	$(BIN)/mkdocs serve --strict

# Prints the link to the correlearn experiment's runs (tagging the experiment as model training
# first, see correlearn.tracking), then serves the local store.
ui: setup
	@$(BIN)/python -c 'from correlearn.tracking import local_ui_link; print("correlearn runs:", local_ui_link())' || true
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CORRELEARN_HOME)/mlflow.db \
		--default-artifact-root $(CORRELEARN_HOME)/mlartifacts --host 127.0.0.1 --port 5000

clean-workspace:
	rm -rf $(CORRELEARN_HOME)

# --- Operate it: local Prefect server + worker + MLflow server (bin/server.py) ---------------
# Ports: PREFECT_PORT (4200), MLFLOW_PORT (5000); state, logs and PID files under CORRELEARN_HOME.
.PHONY: server stop server-status check-report

server: setup
	$(BIN)/python bin/server.py start

stop:
	$(BIN)/python bin/server.py stop

server-status:
	$(BIN)/python bin/server.py status

# Renders the newest report in headless Chromium (apt-get install chromium) and checks it.
check-report:
	$(BIN)/python bin/check_report.py $(REPORT)
