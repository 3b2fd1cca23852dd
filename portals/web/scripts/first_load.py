"""First-load JavaScript of an exported page, gzipped: every module script its HTML loads.

`python portals/web/scripts/first_load.py [page]` prints it for the search page (out/index.html) or
another page. The noModule polyfills are left out: browsers that run modules never fetch them.
"""

from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "out"
_SCRIPT = re.compile(r"<script\b([^>]*)>")


def first_load_scripts(html: str) -> list[str]:
    found = []
    for attrs in _SCRIPT.findall(html):
        src = re.search(r'\bsrc="([^"]+)"', attrs)
        if src and "nomodule" not in attrs.lower() and src.group(1) not in found:
            found.append(src.group(1))
    return found


def first_load_bytes(page: str = "index.html", out: Path = OUT) -> dict[str, tuple[int, int]]:
    """{script: (raw bytes, gzipped bytes)} for one exported page."""
    html = (out / page).read_text()
    sizes = {}
    for src in first_load_scripts(html):
        raw = (out / src.lstrip("/")).read_bytes()
        sizes[src] = (len(raw), len(gzip.compress(raw, compresslevel=9)))
    return sizes


if __name__ == "__main__":
    for page in sys.argv[1:] or ["index.html"]:
        sizes = first_load_bytes(page)
        raw, gz = sum(r for r, _ in sizes.values()), sum(g for _, g in sizes.values())
        print(f"{page}: {len(sizes)} scripts, {raw / 1000:.1f} kB raw, {gz / 1000:.1f} kB gzipped")
