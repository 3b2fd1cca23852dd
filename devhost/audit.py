"""Known-vulnerability gate for the check script: pip-audit over the pinned requirements, npm audit over
each Node workspace (tools/, portals/ when present).

Fails on a known high or critical advisory. PyPI's advisory feed (what pip-audit asks) carries no
severity, so every Python advisory counts as high unless `devhost/audit-ignore.txt` lists its id with a
reason. When an advisory service cannot be reached (offline, proxy), says so and passes: an outage
upstream must not block work, and the next run with a network checks again.

    python -m devhost.audit            # exit 0: clean or unreachable (warned); 1: advisories found
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from shared.config import PROJECT_ROOT

REQUIREMENTS = ("requirements.txt", "requirements-dev.txt", "requirements-checkov.txt")
NODE_WORKSPACES = ("tools", "portals")
IGNORE_FILE = PROJECT_ROOT / "devhost" / "audit-ignore.txt"
FAILING_NPM_SEVERITIES = frozenset({"high", "critical"})
# Words in an error that mean "could not ask", not "asked and found something".
_UNREACHABLE = (
    "connectionerror",
    "connection error",
    "max retries exceeded",
    "name or service not known",
    "temporary failure in name resolution",
    "enotfound",
    "eai_again",
    "econnrefused",
    "econnreset",
    "etimedout",
    "network",
    "timed out",
    "proxy",
    "unable to get local issuer certificate",
)


@dataclass(frozen=True)
class Outcome:
    name: str
    findings: list[str]
    unreachable: str | None = None


def ignored_ids(path: Path = IGNORE_FILE) -> dict[str, str]:
    """`ID  reason` lines; an entry without a reason is refused, so every exception says why."""
    ignored: dict[str, str] = {}
    if not path.exists():
        return ignored
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        vuln_id, _, reason = line.partition(" ")
        if not reason.strip():
            raise SystemExit(f"{path.name}:{number}: {vuln_id} needs a reason after it")
        ignored[vuln_id] = reason.strip()
    return ignored


def _unreachable(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in _UNREACHABLE)


def python_findings(report: dict, ignored: dict[str, str]) -> list[str]:
    findings = []
    for dependency in report.get("dependencies", []):
        for vuln in dependency.get("vulns", []):
            ids = {vuln["id"], *vuln.get("aliases", [])}
            if ids & ignored.keys():
                continue
            fix = ", ".join(vuln.get("fix_versions", [])) or "no fixed release yet"
            findings.append(f"{dependency['name']}=={dependency['version']}: {vuln['id']} (fixed in {fix})")
    return findings


def audit_python(root: Path = PROJECT_ROOT) -> Outcome:
    args = [sys.executable, "-m", "pip_audit", "--format", "json", "--progress-spinner", "off"]
    # Every line is pinned, so the files are the lock: audit exactly those versions without resolving.
    args += ["--no-deps", "--disable-pip"]
    for name in REQUIREMENTS:
        if (root / name).exists():
            args += ["-r", str(root / name)]
    run = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603 - our interpreter, fixed arguments
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        if _unreachable(run.stderr):
            return Outcome("pip-audit", [], unreachable=run.stderr.strip().splitlines()[-1])
        raise SystemExit(f"pip-audit failed (exit {run.returncode}):\n{run.stderr}") from None
    skipped = [d["name"] for d in report.get("dependencies", []) if d.get("skip_reason")]
    audited = [d for d in report.get("dependencies", []) if not d.get("skip_reason")]
    if skipped and not audited:
        # Reached no advisory at all (an index mirror without PyPI's JSON API answers "not found on PyPI").
        return Outcome(
            "pip-audit", [], unreachable=f"PyPI's vulnerability API answered for none of {len(skipped)} pins"
        )
    findings = python_findings(report, ignored_ids())
    if skipped:
        findings_note = f"not audited (not found on PyPI): {', '.join(skipped)}"
        print(f"WARNING: pip-audit: {findings_note}")
    return Outcome("pip-audit", findings)


def npm_findings(report: dict, ignored: dict[str, str]) -> list[str]:
    findings = []
    for name, vuln in sorted(report.get("vulnerabilities", {}).items()):
        if vuln.get("severity") not in FAILING_NPM_SEVERITIES:
            continue
        advisories = [v for v in vuln.get("via", []) if isinstance(v, dict)]
        urls = {a.get("url", "") for a in advisories}
        if advisories and all(any(i in url for i in ignored) for url in urls):
            continue
        titles = "; ".join(sorted({a.get("title", "") for a in advisories})) or "via " + ", ".join(
            v for v in vuln.get("via", []) if isinstance(v, str)
        )
        findings.append(f"{name} ({vuln['severity']}): {titles}")
    return findings


def audit_npm(workspace: Path) -> Outcome:
    name = f"npm audit ({workspace.name}/)"
    npm = shutil.which("npm")
    if npm is None:
        return Outcome(name, [], unreachable="npm is not installed")
    run = subprocess.run(  # noqa: S603 - npm from PATH, fixed arguments
        [npm, "audit", "--json", "--audit-level=high"],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        report = json.loads(run.stdout or "{}")
    except json.JSONDecodeError:
        report = {}
    if "vulnerabilities" not in report:
        # The lock file exists (checked by the caller), so no report means the registry's audit endpoint did
        # not answer: offline, or a mirror that serves packages but not advisories (405 on the bulk endpoint).
        error = report.get("error") or {}
        detail = report.get("message") or error.get("summary") or error.get("code") or run.stderr.strip()
        return Outcome(name, [], unreachable=str(detail or "no report").splitlines()[0])
    return Outcome(name, npm_findings(report, ignored_ids()))


def main() -> int:
    outcomes = [audit_python()]
    for workspace in NODE_WORKSPACES:
        path = PROJECT_ROOT / workspace
        if (path / "package-lock.json").exists():
            outcomes.append(audit_npm(path))
    failed = False
    for outcome in outcomes:
        if outcome.unreachable:
            print(f"WARNING: {outcome.name}: advisory service unreachable ({outcome.unreachable}); not checked")
        elif outcome.findings:
            failed = True
            print(f"{outcome.name}: {len(outcome.findings)} known high-severity issue(s):")
            for finding in outcome.findings:
                print(f"  - {finding}")
        else:
            print(f"{outcome.name}: no known high-severity issues")
    if failed:
        print(f"Upgrade the pins, or list an advisory id with its reason in {IGNORE_FILE.name}.")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
