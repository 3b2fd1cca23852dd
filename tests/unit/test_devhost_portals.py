"""devhost serves the portals' static export beside /api and rebuilds it only when its sources change."""

from __future__ import annotations

import json

from devhost.portals import PortalSite, portal_config, source_stamp
from devhost.static_site import StaticSite
from shared.config import Settings


def _site(tmp_path):
    out = tmp_path / "out"
    (out / "cart").mkdir(parents=True)
    (out / "index.html").write_text("<h1>search</h1>")
    (out / "cart" / "index.html").write_text("<h1>cart</h1>")
    (out / "404.html").write_text("<h1>not here</h1>")
    (tmp_path / "secret.txt").write_text("outside")
    return out


def test_pages_resolve_to_their_exported_files_and_never_outside_the_export(tmp_path):
    out = _site(tmp_path)
    resolve = StaticSite(out, Settings()).resolve
    assert resolve("/") == out / "index.html"
    assert resolve("/cart/") == out / "cart" / "index.html"
    assert resolve("/cart") == out / "cart" / "index.html"
    for escape in ("/../secret.txt", "/%2e%2e/secret.txt", "/cart/../../secret.txt", "/.source-stamp"):
        assert resolve(escape) is None


def test_unknown_pages_get_the_404_page_and_the_config_names_the_same_origin_provider(tmp_path):
    out = _site(tmp_path)
    site = PortalSite(Settings(), build=None, out_dir=out)
    status, _, body = site.serve("GET", "/nowhere/", "127.0.0.1:5000")
    assert (status, body) == (404, b"<h1>not here</h1>")
    status, headers, body = site.serve("GET", "/portal-config.json", "127.0.0.1:5000")
    assert status == 200 and (b"content-type", b"application/json") in headers
    assert json.loads(body)["oidc"]["authority"] == "http://127.0.0.1:5000/auth"
    assert site.serve("POST", "/", "x")[0] == 405


def test_on_azure_the_config_points_at_the_configured_identity_provider():
    settings = Settings(PORTAL_OIDC_AUTHORITY="https://login.microsoftonline.com/tenant/v2.0")
    assert portal_config(settings, "ignored")["oidc"]["authority"] == "https://login.microsoftonline.com/tenant/v2.0"


def test_the_build_stamp_changes_with_a_source_but_not_with_build_output(tmp_path):
    (tmp_path / "web" / "src").mkdir(parents=True)
    (tmp_path / "web" / "src" / "page.tsx").write_text("a")
    before = source_stamp(tmp_path)
    for ignored in ("out", "node_modules", ".next"):
        (tmp_path / "web" / ignored).mkdir()
        (tmp_path / "web" / ignored / "x.js").write_text("built")
    assert source_stamp(tmp_path) == before
    (tmp_path / "web" / "src" / "page.tsx").write_text("b")
    assert source_stamp(tmp_path) != before
