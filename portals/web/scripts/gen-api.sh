#!/usr/bin/env bash
# Regenerates src/api/schema.d.ts from the OpenAPI document the app serves, built in-process (no server).
# tests/unit/test_portal_api_types.py fails when the committed file differs from what this writes.
set -euo pipefail
web="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$web/../.." && pwd)"
spec="$(mktemp --suffix=.json)"
trap 'rm -f "$spec"' EXIT
(cd "$root" && .venv/bin/python -m devhost openapi > "$spec")
"$root/portals/node_modules/.bin/openapi-typescript" "$spec" -o "$web/src/api/schema.d.ts" --silent
