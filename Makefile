# The two entry points a new machine needs (see README.md).
.PHONY: setup demo serve check test test-fast test-floors lock bench bench-full clean

VENV := .venv
DEMO_DIR ?= demo
DEMO_IMAGES ?= 1000

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/bin/semcurate demo --out $(DEMO_DIR) --images $(DEMO_IMAGES)

# Browse the demo (make demo first) at http://127.0.0.1:8000/, read-only.
serve: setup
	$(VENV)/bin/semcurate serve --db $(DEMO_DIR)/semcurate.db

# Style (ruff lint + format) and types and docstring examples of the pure cores.
check: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	bash scripts/check_cores.sh

# Everything CI runs: the checks, the whole suite, then the suite's fast part at the dependency floors.
test: check
	$(VENV)/bin/python -m pytest -q
	bash scripts/test_floors.sh

# The edit loop: the suite without the tests marked slow (TensorFlow, full-size corpora, CLI end to end).
test-fast: setup
	$(VENV)/bin/python -m pytest -q -m "not slow"

# The oldest version of every dependency (constraints-floors.txt) in a
# throw-away .venv-floors/, and the fast part of the test suite against them
# (setup first: it installs the Tesseract program the OCR tests call).
test-floors: setup
	bash scripts/test_floors.sh

# Regenerate constraints.txt (the exact versions setup.sh installs) from a
# throw-away venv with the newest releases pyproject.toml allows; then run
# `make test` and commit pyproject.toml and constraints.txt together.
lock:
	bash scripts/lock.sh

bench: setup
	$(VENV)/bin/python bench/demo_corpus.py
	$(VENV)/bin/python bench/ingest.py
	$(VENV)/bin/python bench/near_duplicates.py
	$(VENV)/bin/python bench/scale.py
	$(VENV)/bin/python bench/intrinsic_dimension.py
	$(VENV)/bin/python bench/classic_descriptor.py
	$(VENV)/bin/python bench/features.py
	$(VENV)/bin/python bench/clustering.py
	$(VENV)/bin/python bench/evaluation.py
	$(VENV)/bin/python bench/cli.py
	$(VENV)/bin/python bench/faults.py
	$(VENV)/bin/python bench/serve.py

# Issue 17: every stage of the demo on 52,682 images, each its own process, measured (hours; resumable: run it
# again after a stop). Writes bench/results/full_scale.json; compared with the 1,000-image run when it is there.
# BENCH_FULL_ARGS passes more options, e.g. "--size-scale 0.25 --stop-by 2026-12-04T20:35" (a quarter of the
# pixels fit a 73 GB disk; pause between stages before that time, the same command continues).
# Then, once the run has its report, the web browser and the report are timed on what it made
# (bench/serve_full_scale.py, bench/report_render.py).
BENCH_FULL_ARGS ?=
BENCH_FULL_OUT ?= build/full_scale
bench-full: setup
	$(VENV)/bin/python bench/full_scale.py --images 52682 --out $(BENCH_FULL_OUT) \
		$(if $(wildcard bench/results/full_scale_1000.json),--reference bench/results/full_scale_1000.json) \
		$(BENCH_FULL_ARGS)
	if [ -f $(BENCH_FULL_OUT)/report.html ]; then \
		$(VENV)/bin/python bench/serve_full_scale.py --run $(BENCH_FULL_OUT) && \
		$(VENV)/bin/python bench/report_render.py $(BENCH_FULL_OUT)/report.html; \
	else echo "the run has not reached its report yet (paused?): the browser and report timings wait for it"; fi

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
