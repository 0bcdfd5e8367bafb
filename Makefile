# Two commands a new user needs: `make run` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SAMPLE := examples/sample

.PHONY: run test lint bench fuzz sample clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(BIN)/.installed
	@mkdir -p out && rm -f out/events.ndjson
	$(BIN)/shipper run $(SAMPLE) --sink jsonl:out/events.ndjson --report out/report.json
	@echo "structured events written to out/events.ndjson, the report as JSON to out/report.json (see the README)"

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(BIN)/.installed
	$(BIN)/python bench/bench_pipeline.py

# Coverage-guided fuzzing of the decoder and classifier; FUZZ_SECONDS sets the budget.
FUZZ_SECONDS ?= 120
fuzz: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet atheris
	$(BIN)/python fuzz/fuzz_pipeline.py -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1

# Regenerates the bundled sample export (deterministic: same seed, same bytes).
sample: $(BIN)/.installed
	$(BIN)/python examples/generate.py $(SAMPLE)

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .hypothesis

# Deployment (see the README). `make package` builds dist/lambda.zip (ARCH, LAMBDA_PYTHON) and the zips of
# both architectures, and reports their sizes; `make validate-template` transforms and lints deploy/template.yaml.
.PHONY: package validate-template
ARCH ?= arm64
LAMBDA_PYTHON ?= 3.13

package: $(BIN)/.installed
	$(BIN)/python deploy/package.py --deploy-arch $(ARCH) --python $(LAMBDA_PYTHON)

validate-template: $(BIN)/.installed
	$(BIN)/python -m pytest -q tests/test_deploy_template.py
