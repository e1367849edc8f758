#!/usr/bin/env bash
# Prove the floors in pyproject.toml: install every dependency at its floor
# (constraints-floors.txt) into a throw-away .venv-floors/ and run the fast part
# of the test suite there, one or more test files for each dependency.
#
# Needs Python 3.11 (the oldest semcurate supports; NumPy 1.23.5 has no wheels
# for newer ones) and the tesseract program (scripts/setup.sh installs it).
# tesserocr (the fast-ocr extra) is left out of the first run, so the OCR tests
# also prove that semcurate works on pytesseract alone; it is then installed at
# its floor for a second run of test_ocr.py.  TensorFlow 2.16.1 and Keras 3.0.0 are
# installed and test_autoencoder.py runs on them; the slow TensorFlow tests
# (test_inception.py, test_finetune.py: several minutes) are left to `make test`.
# Usage: make test-floors (or bash scripts/test_floors.sh); about 3 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      PYTHON=$candidate; break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "test_floors: needs Python 3.11, the oldest semcurate supports (set PYTHON=/path/to/python3.11)" >&2; exit 2
fi

rm -rf .venv-floors
"$PYTHON" -m venv .venv-floors
.venv-floors/bin/python -m pip install -q -c constraints.txt --upgrade pip
# Wheels only: a floor that would have to be compiled here is not a floor for Python 3.11.
.venv-floors/bin/python -m pip install -q --only-binary=:all: -c constraints-floors.txt -e '.[test]'

# One test is left out because its reference, not semcurate, needs a newer release:
# SciPy < 1.15's fcluster(criterion="maxclust") gives 298 clusters for k = 299 and 300
# on the test's points; semcurate's Cutter does not use it.
# The floors venv has no postgres extra: the database tests run on SQLite here (PostgreSQL in `make test`).
export SEMCURATE_TEST_BACKENDS=sqlite
.venv-floors/bin/python -m pytest -q -p no:cacheprovider \
  tests/test_scores.py tests/test_agglomerative.py tests/test_density_peaks.py tests/test_flat.py \
  tests/test_splitting.py tests/test_distances.py tests/test_intrinsic_dimension.py tests/test_classic.py \
  tests/test_feature_store.py tests/test_autoencoder.py \
  tests/test_db.py tests/test_cli.py tests/test_public_api.py tests/test_report.py tests/test_compare2d.py \
  tests/test_ingest.py tests/test_vendor_metadata.py tests/test_demo_corpus.py tests/test_databar.py \
  tests/test_length_text.py tests/test_ocr.py tests/test_scale_bar.py tests/test_databar_geometry.py \
  tests/test_real_instruments.py tests/test_placement.py tests/test_preprocessing.py tests/test_quick_read.py \
  tests/test_similar.py tests/test_web.py tests/test_quality.py tests/test_near_duplicates.py tests/test_outliers.py \
  tests/test_communities.py \
  --deselect tests/test_agglomerative.py::test_cutter_agrees_with_scipy_fcluster_on_monotone_trees

.venv-floors/bin/python -m pip install -q --only-binary=:all: -c constraints-floors.txt -e '.[test,fast-ocr]'
.venv-floors/bin/python -m pytest -q -p no:cacheprovider tests/test_ocr.py
