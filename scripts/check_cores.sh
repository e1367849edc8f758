#!/usr/bin/env bash
# Check the pure cores: mypy over their types, then pytest over the examples
# in their docstrings (--doctest-modules).
#
# mypy cannot follow setuptools' package-dir mapping (the stage folders at the
# top of the repository are installed as semcurate.ingest, semcurate.features,
# ...), so this script first lays out the package as it is installed, as a tree
# of symbolic links under build/typecheck/ (git-ignored, rebuilt on every run):
#
#   build/typecheck/semcurate/__init__.py -> semcurate/__init__.py (and everything else in semcurate/)
#   build/typecheck/semcurate/ingest      -> ingest/               (and the other stage folders)
#
# pyproject.toml's [tool.mypy] points mypy_path at that tree, and the cores are
# named by their dotted import names.  The doctests import the same tree, so a
# module is imported once, under its installed name.
#
# Usage: bash scripts/check_cores.sh   (PYTHON=/path/to/python to use another interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}

# The cores: pure functions and estimators over numpy arrays, PIL images and
# dataclasses (design.md, "Inside a stage"), as paths without the .py.
CORES=(
  ingest/formats ingest/convert ingest/images ingest/rendition ingest/databar_geometry
  ingest/length_text ingest/scale_bar ingest/vendor_metadata ingest/walk ingest/quality ingest/near_duplicates
  datasets/databar datasets/specimens datasets/taxonomy datasets/demo_corpus datasets/textures datasets/defects
  features/classic features/particles features/scattering features/intrinsic_dimension features/autoencoder features/distances features/preprocessing
  features/outliers features/invariance
  clustering/agglomerative clustering/hierarchy clustering/density_peaks clustering/flat clustering/communities
  clustering/n_clusters clustering/splitting clustering/placement clustering/placement_tables
  evaluation/scores evaluation/compare2d
  web/similar web/thumbnails
)
STAGES=(ingest datasets features clustering evaluation db web)

TREE=build/typecheck
rm -rf "$TREE"
mkdir -p "$TREE/semcurate"
for source in semcurate/*; do
  [ "${source##*/}" = __pycache__ ] || ln -s "../../../$source" "$TREE/semcurate/"
done
for stage in "${STAGES[@]}"; do
  ln -s "../../../$stage" "$TREE/semcurate/$stage"
done

modules=()
paths=()
for core in "${CORES[@]}"; do
  modules+=(-m "semcurate.${core//\//.}")
  paths+=("$TREE/semcurate/$core.py")
done

echo "== mypy: ${#CORES[@]} core modules"
"$PYTHON" -m mypy "${modules[@]}"

echo "== doctests: pytest --doctest-modules over the same modules"
"$PYTHON" -m pytest -q -p no:cacheprovider --doctest-modules "${paths[@]}"
