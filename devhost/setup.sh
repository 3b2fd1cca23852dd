#!/usr/bin/env bash
# Idempotent set-up of everything a local run or the tests need, from the project's own files:
# the Python venv, Azurite (npm, project-local), the portals' npm packages, the Functions worker
# indexer wheel, and Debian's Chromium for the browser tests (when run as root and it is missing).
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

# checkov (infra checks in the test suite) lives in its own venv: its pins (packaging 23.2, networkx 2.x,
# cyclonedx-python-lib 7.x, boto3) conflict with the app's venv. See requirements-checkov.txt.
checkov_venv=var/venvs/checkov
checkov_stamp=$checkov_venv/.requirements.sha
checkov_want=$(sha256sum requirements-checkov.txt | cut -d' ' -f1)
if [ "$(cat "$checkov_stamp" 2>/dev/null)" != "$checkov_want" ]; then
  [ -x "$checkov_venv/bin/python" ] || "$PYTHON" -m venv "$checkov_venv"
  "$checkov_venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
  echo "$checkov_want" > "$checkov_stamp"
fi

command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || {
  echo "Node.js 20+ with npm is required for Azurite (https://nodejs.org, or your package manager)" >&2; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { echo "Node.js 20+ is required for Azurite; found $(node --version)" >&2; exit 1; }
npm_stamp=tools/node_modules/.lock.sha
npm_want=$(sha256sum tools/package-lock.json | cut -d' ' -f1)
if [ ! -x tools/node_modules/.bin/azurite-blob ] || [ "$(cat "$npm_stamp" 2>/dev/null)" != "$npm_want" ]; then
  npm ci --prefix tools --no-audit --no-fund --loglevel=error
  echo "$npm_want" > "$npm_stamp"
fi

# The portals (Next.js, built by devhost start): npm ci again only when the lock file changed.
portals_stamp=portals/node_modules/.lock.sha
portals_want=$(sha256sum portals/package-lock.json | cut -d' ' -f1)
if [ ! -x portals/node_modules/.bin/next ] || [ "$(cat "$portals_stamp" 2>/dev/null)" != "$portals_want" ]; then
  npm ci --prefix portals --no-audit --no-fund --loglevel=error
  echo "$portals_want" > "$portals_stamp"
fi

# The browser tests drive Debian's Chromium (no browser can be downloaded by the test tools here).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
  else
    echo "note: /usr/bin/chromium is missing; the browser tests need it (sudo apt-get install chromium)" >&2
  fi
fi

# The Functions Python worker's indexer declares Python >= 3.13 but is pure Python: the app-indexing
# test loads it from here, so it is fetched as a wheel, never installed into the venv.
worker_wheels="azure-functions-runtime==1.3.0 azurefunctions-extensions-base==1.2.0"
wheel_dir=var/wheels/azure-functions-runtime
if [ "$(cat "$wheel_dir/.pins" 2>/dev/null)" != "$worker_wheels" ]; then
  rm -rf var/wheels && mkdir -p var/wheels/download "$wheel_dir"
  # shellcheck disable=SC2086
  .venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.13 -d var/wheels/download $worker_wheels
  for whl in var/wheels/download/*.whl; do
    .venv/bin/python -m zipfile -e "$whl" "$wheel_dir"
  done
  echo "$worker_wheels" > "$wheel_dir/.pins"
fi
