# The README's two commands: `make demo` and `make test`. Each bootstraps .venv and models/ by itself.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODELS_DIR ?= models
STAMP := $(VENV)/.installed

.PHONY: install models lint format test demo bench tune clean

install: $(STAMP)
# At the versions of functions/constraints.txt (what the function images install, `python -m infra.lock`), so a
# fresh machine tests what the images hold rather than whatever the registry published since.
$(STAMP): pyproject.toml infra/pyproject.toml functions/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> installing imagelift, its tooling (infra/) and their dependencies into $(VENV)"
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint functions/constraints.txt -e '.[dev]' -e './infra[local,build]'
	@touch $@

# `--extra body`: MoveNet and CenterNet (bench/results/body_votes.md), measured and tested here, not in the image.
models: $(MODELS_DIR)/manifest.json
$(MODELS_DIR)/manifest.json: $(STAMP) infra/models/sources.json
	$(BIN)/imagelift models build --out $(MODELS_DIR) --extra body

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# checkov runs inside the test suite (tests/integration/test_template_checkov.py); its own venv is made here.
test: lint models .venv-checkov/bin/checkov
	$(BIN)/python -m pytest

demo: models
	$(BIN)/imagelift demo

bench: models
	$(BIN)/python bench/vision_bench.py
	$(BIN)/python bench/report_bench.py
	$(BIN)/python bench/burst_bench.py
	$(BIN)/python bench/hostile_bench.py
	$(BIN)/python bench/sales_cases.py

# The classifier's defaults are fitted here, by nested cross-validation over ../shared/data/images and pool
# (scores cached in .cache/; about an hour at one thread): the fitted values go into config.py's defaults.
tune: models
	$(BIN)/python bench/face_tuning.py
	$(BIN)/python bench/vision_scores.py
	$(BIN)/python bench/tune_vision.py

clean:
	rm -rf $(VENV) $(MODELS_DIR) out .cache .pytest_cache .ruff_cache

# checkov on template.yaml, in its own virtual environment (.venv-checkov; checkov pins an old boto3).
.PHONY: checkov
checkov:
	infra/checkov/run.sh

.venv-checkov/bin/checkov:
	CHECKOV_INSTALL_ONLY=1 infra/checkov/run.sh
