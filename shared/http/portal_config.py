"""Write the portals' `staticwebapp.config.json` for Azure Static Web Apps: the same security headers devhost
sends, with one CSP for the whole export.

Static Web Apps sets headers per route pattern, not per file, so the policy allows the union of the inline
scripts of every exported page: still only what this build wrote, never anything added later. Run after
`next build` (azure.yaml's prepackage hook does):

    python -m shared.http.portal_config portals/web/out
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from shared.http.security import HSTS_VALUE, inline_hashes, portal_csp_from_hashes

CONFIG_NAME = "staticwebapp.config.json"


def export_hashes(out_dir: Path) -> tuple[list[str], list[str]]:
    scripts: dict[str, None] = {}
    styles: dict[str, None] = {}
    for page in sorted(out_dir.rglob("*.html")):
        page_scripts, page_styles = inline_hashes(page.read_text(encoding="utf-8"))
        scripts.update(dict.fromkeys(page_scripts))
        styles.update(dict.fromkeys(page_styles))
    return list(scripts), list(styles)


def static_web_app_config(
    out_dir: Path, *, issuer: str | None = None, blob_endpoint: str | None = None, front_door_id: str | None = None
) -> dict:
    scripts, styles = export_hashes(out_dir)
    # Images come through Front Door on the same origin ('self'); sign-in talks to the issuer, and the studio
    # PUTs uploads straight to the storage account with the ticket's SAS URL.
    connect = _origins([url for url in (issuer, blob_endpoint) if url])
    csp = portal_csp_from_hashes(scripts, styles, connect_sources=connect, upgrade_insecure=True)
    config: dict = {
        "globalHeaders": {
            "Content-Security-Policy": csp,
            "Strict-Transport-Security": HSTS_VALUE,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "strict-origin-when-cross-origin",
            "X-Frame-Options": "DENY",
            "Cross-Origin-Opener-Policy": "same-origin",
        },
        "routes": [
            # Next fingerprints everything under /_next/static; pages are revalidated to pick up a new build.
            {"route": "/_next/static/*", "headers": {"Cache-Control": "public, max-age=31536000, immutable"}},
        ],
        "responseOverrides": {"404": {"rewrite": "/404.html"}},
    }
    if front_door_id:
        # Only our Front Door may fetch the pages, so its WAF cannot be bypassed by the *.azurestaticapps.net name.
        config["forwardingGateway"] = {"requiredHeaders": {"X-Azure-FDID": front_door_id}}
    return config


def _origins(urls: list[str]) -> list[str]:
    from urllib.parse import urlsplit

    return [f"{p.scheme}://{p.netloc}" for p in map(urlsplit, urls) if p.scheme and p.netloc]


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        sys.stderr.write("usage: python -m shared.http.portal_config <export dir, e.g. portals/web/out>\n")
        return 2
    out_dir = Path(argv[0])
    # azd hands the Bicep outputs and the environment's values to hooks as environment variables.
    config = static_web_app_config(
        out_dir,
        issuer=os.environ.get("AUTH_ISSUER"),
        blob_endpoint=os.environ.get("STORAGEBLOBENDPOINT"),
        front_door_id=os.environ.get("FRONTDOORID"),
    )
    (out_dir / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {out_dir / CONFIG_NAME}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
