"""The portals' API types are generated from the OpenAPI document the app serves, never written by hand."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

import function_app  # noqa: F401  (registers every route, as the served document does)
from shared.config import PROJECT_ROOT
from shared.http import build_openapi

WEB = PROJECT_ROOT / "portals" / "web"
GENERATOR = PROJECT_ROOT / "portals" / "node_modules" / ".bin" / "openapi-typescript"


@pytest.mark.slow
def test_committed_api_types_match_the_spec_the_app_serves(tmp_path):
    if not GENERATOR.exists() or shutil.which("node") is None:
        pytest.fail("openapi-typescript is missing: run devhost/setup.sh (it runs npm ci in portals/)")
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(build_openapi(title="Stock marketplace API", version="1"), indent=2))
    fresh = tmp_path / "schema.d.ts"
    subprocess.run([str(GENERATOR), str(spec), "-o", str(fresh)], check=True, capture_output=True, timeout=120)
    committed = (WEB / "src" / "api" / "schema.d.ts").read_text()
    assert fresh.read_text() == committed, (
        "portals/web/src/api/schema.d.ts is out of date with the API: run `npm run gen:api --prefix portals` "
        "and commit the result"
    )
