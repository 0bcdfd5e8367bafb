# Two commands a new user needs: `make run` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SAMPLE := examples/sample

.PHONY: run test lint native bench bench-instructions fuzz soak sample clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The hot path compiled with mypyc from the same sources (docs/performance.md). Rebuilt when one of them
# changes; without a C compiler (and no Zig from PyPI) shipper runs as pure Python and this says so.
# Then every module's bytecode, as installing the package writes it (the editable install does not).
NATIVE_SOURCES := $(shell $(PYTHON) build_native.py sources)
native: $(BIN)/.native
$(BIN)/.native: $(BIN)/.installed build_native.py $(NATIVE_SOURCES)
	$(BIN)/python build_native.py build
	$(BIN)/python -m compileall -q shipper
	touch $@

run: $(BIN)/.native
	@mkdir -p out && rm -f out/events.ndjson
	$(BIN)/shipper run $(SAMPLE) --sink jsonl:out/events.ndjson --report out/report.json --report out/report.html
	@echo "structured events written to out/events.ndjson, the report as JSON to out/report.json and as a page"
	@echo "with charts to out/report.html (open it in a browser; docs/run.md explains them)"

# The suite runs twice: on the compiled hot path, then on the same modules as pure Python.
test: $(BIN)/.native
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest
	SHIPPER_PURE_PYTHON=1 $(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Each benchmark runs twice: the compiled hot path, then the same modules as pure Python.
bench: $(BIN)/.native
	$(BIN)/python bench/bench_pipeline.py
	SHIPPER_PURE_PYTHON=1 $(BIN)/python bench/bench_pipeline.py

# The same implementations counted in CPU instructions under valgrind: noise-free, for comparing changes.
bench-instructions: $(BIN)/.native
	$(BIN)/python bench/bench_instructions.py
	SHIPPER_PURE_PYTHON=1 $(BIN)/python bench/bench_instructions.py

# Coverage-guided fuzzing of the whole handler path (decode, classify, router, local sinks, report, registry)
# with extreme numbers (fuzz/numbers.dict), on the compiled hot path built with ASan and UBSan in a copy of the
# package (fuzz/run.py; needs clang: apt-get install clang libclang-rt-14-dev, else it says so and fuzzes
# without sanitizers). FUZZ_SECONDS sets the budget, FUZZ_FLAGS adds libFuzzer flags (a corpus directory).
FUZZ_SECONDS ?= 120
FUZZ_FLAGS ?=
fuzz: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet atheris
	$(BIN)/python fuzz/run.py $(FUZZ_SECONDS) $(FUZZ_FLAGS)

# Sustained load through the Lambda handler to a local HTTP server that fails on purpose (bench/soak.py):
# events/s, peak RSS, RSS over time; fails if an event is lost or RSS grows. SOAK_SECONDS sets the time.
SOAK_SECONDS ?= 120
soak: $(BIN)/.installed
	$(BIN)/python bench/soak.py --seconds $(SOAK_SECONDS)

# Regenerates the bundled sample, as Kinesis events and as aws logs tail text (deterministic: same seed, same bytes).
sample: $(BIN)/.installed
	$(BIN)/python examples/generate.py $(SAMPLE)
	$(BIN)/python examples/exports.py examples/sample-text --sample-text

clean:
	$(PYTHON) build_native.py clean
	rm -rf $(VENV) out .pytest_cache .ruff_cache .mypy_cache .hypothesis

# Deployment (docs/deploy.md). `make package` builds dist/lambda.zip (ARCH, LAMBDA_PYTHON) and the zips of
# both architectures, with the hot path compiled when the venv's Python is LAMBDA_PYTHON, and reports their sizes
# and hot path; `make validate-template` transforms and lints deploy/template.yaml.
.PHONY: package validate-template lock audit
ARCH ?= arm64
LAMBDA_PYTHON ?= 3.13

package: $(BIN)/.installed
	$(BIN)/python deploy/package.py --deploy-arch $(ARCH) --python $(LAMBDA_PYTHON) $(PACKAGE_FLAGS)

# What `sam build` runs for deploy/template.yaml's Function (BuildMethod: makefile), in its own copy of the repo.
# WITH_BACKENDS=1 (`WITH_BACKENDS=1 sam build ...`, or `make package WITH_BACKENDS=1`) bundles the otlp and snappy
# extras that the otlp, prometheus-remote-write and loki sinks need.
.PHONY: build-Function
WITH_BACKENDS ?=
PACKAGE_FLAGS := $(if $(filter 1 yes true,$(WITH_BACKENDS)),--with-backends)
build-Function:
	$(PYTHON) deploy/package.py --arch $(ARCH) --python $(LAMBDA_PYTHON) $(PACKAGE_FLAGS) --target-dir "$(ARTIFACTS_DIR)"

validate-template: $(BIN)/.installed
	$(BIN)/python -m pytest -q tests/test_deploy_template.py

# The Lambda package's dependencies, pinned with the hashes of every file PyPI has for each version (any platform),
# resolved from PyPI alone; deploy/package.py installs them with --require-hashes. Re-run after changing them.
LOCK := PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_CERT=/etc/ssl/certs/ca-certificates.crt CUSTOM_COMPILE_COMMAND="make lock" \
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
	--index-url https://pypi.org/simple pyproject.toml
lock: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet pip-tools
	$(LOCK) --output-file deploy/requirements.txt
	$(LOCK) --extra aws --output-file deploy/requirements-aws.txt
	$(LOCK) --extra otlp --extra snappy --output-file deploy/requirements-backends.txt
	$(LOCK) --extra aws --extra otlp --extra snappy --output-file deploy/requirements-aws-backends.txt

# Known vulnerabilities in the pinned Lambda dependencies (PyPI advisory database, through pip-audit).
audit: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet pip-audit
	$(BIN)/pip-audit --strict --require-hashes --disable-pip -r deploy/requirements.txt
	$(BIN)/pip-audit --strict --require-hashes --disable-pip -r deploy/requirements-aws.txt
	$(BIN)/pip-audit --strict --require-hashes --disable-pip -r deploy/requirements-backends.txt
	$(BIN)/pip-audit --strict --require-hashes --disable-pip -r deploy/requirements-aws-backends.txt
