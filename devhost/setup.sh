#!/usr/bin/env bash
# Idempotent set-up of everything a local run or the tests need, from the project's own files:
# the Python venv, Azurite (npm, project-local) and the Functions worker indexer wheel.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required (azure-functions 1.x)"'

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
fi

if [ ! -x tools/node_modules/.bin/azurite-blob ]; then
  command -v npm >/dev/null 2>&1 || { echo "npm is required for Azurite (apt-get install nodejs npm)" >&2; exit 1; }
  npm ci --prefix tools --no-audit --no-fund --loglevel=error
fi

# The Functions Python worker's indexer declares Python >= 3.13 but is pure Python: the app-indexing
# test loads it from here, so it is fetched as a wheel, never installed into the venv.
wheel_dir=var/wheels/azure-functions-runtime
if [ ! -d "$wheel_dir/azure_functions_runtime" ]; then
  mkdir -p var/wheels/download "$wheel_dir"
  .venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.13 -d var/wheels/download "azure-functions-runtime==1.3.0" "azurefunctions-extensions-base==1.2.0"
  for whl in var/wheels/download/*.whl; do
    .venv/bin/python -m zipfile -e "$whl" "$wheel_dir"
  done
fi
