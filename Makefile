# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PYSPARK_PYTHON := $(abspath $(BIN)/python)
export PYSPARK_DRIVER_PYTHON := $(abspath $(BIN)/python)

.PHONY: demo test test-fast lint format check-java bench-env clean

check-java:
	@v=$$(java -version 2>&1 | head -n 1 | sed -E 's/.*version "(1\.)?([0-9]+).*/\2/'); \
	if ! command -v java >/dev/null 2>&1 || [ -z "$$v" ] || [ "$$v" -lt 17 ] 2>/dev/null; then \
	  echo "error: curate runs on Apache Spark 4, which needs Java 17 or newer (found: $${v:-none})."; \
	  echo "       Install OpenJDK 17 (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) and set JAVA_HOME."; \
	  exit 1; \
	fi

# setup.py and the .pyx: the compiled speed-up is built by the editable install, so a change to it reinstalls
$(STAMP): pyproject.toml setup.py curate/speedups/block_walk_c.pyx
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	# bytecode for our own modules, as a regular install would make: every Spark Python worker
	# imports them, and with PYTHONDONTWRITEBYTECODE set nothing else writes it
	$(BIN)/python -m compileall -q curate trainer pipelines
	touch $(STAMP)

demo: check-java $(STAMP)
	$(BIN)/curate run pipelines/recipes/demo.yaml --overwrite

test: check-java $(STAMP)
	$(BIN)/python -m pytest -q tests

# The inner loop: no Spark session, no training, no cluster (markers set in tests/conftest.py).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not spark and not training and not cluster and not slow" tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Peers (datatrove) for the benchmarks live in their own environment, never in the product's.
bench-env: $(STAMP)
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install -q -e '.[test]' orjson faust-cchardet python-magic fasteners nltk 'xxhash<4' pyahocorasick dill humanize loguru multiprocess lxml_html_clean
	# datatrove 0.10.1 pins trafilatura 1.x: install it without its pins so that both sides
	# of every comparison use the same trafilatura 2.x; its MinHash needs xxhash<4.
	.venv-bench/bin/pip install -q --no-deps 'datatrove==0.10.1'

clean:
	rm -rf runs spark-warehouse .pytest_cache
