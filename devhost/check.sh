#!/usr/bin/env bash
# Quality gates, then the whole test suite: what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

ruff check .
ruff format --check .
lint-imports
pytest -n "${PYTEST_WORKERS:-auto}" "$@"
