"""The dependency audit gate: which advisories fail the check, and that an unreachable service only warns."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devhost import audit

PIP_AUDIT_REPORT = {
    "dependencies": [
        {
            "name": "jinja2",
            "version": "3.1.2",
            "vulns": [
                {
                    "id": "GHSA-h5c8-rqwp-cp95",
                    "fix_versions": ["3.1.3"],
                    "aliases": ["CVE-2024-22195"],
                    "description": "xss",
                }
            ],
        },
        {"name": "requests", "version": "2.32.5", "vulns": []},
    ],
    "fixes": [],
}
NPM_REPORT = {
    "auditReportVersion": 2,
    "vulnerabilities": {
        "tar": {
            "name": "tar",
            "severity": "high",
            "via": [
                {
                    "source": 1,
                    "title": "Arbitrary file overwrite",
                    "url": "https://github.com/advisories/GHSA-r628-mhmh-qjhw",
                    "severity": "high",
                }
            ],
        },
        "debug": {
            "name": "debug",
            "severity": "moderate",
            "via": [
                {"title": "ReDoS", "url": "https://github.com/advisories/GHSA-gxpj-cx7g-858c", "severity": "moderate"}
            ],
        },
        "azurite": {"name": "azurite", "severity": "high", "via": ["tar"]},
    },
    "metadata": {},
}


def test_every_python_advisory_fails_unless_ignored_with_a_reason():
    assert audit.python_findings(PIP_AUDIT_REPORT, {}) == ["jinja2==3.1.2: GHSA-h5c8-rqwp-cp95 (fixed in 3.1.3)"]
    assert audit.python_findings(PIP_AUDIT_REPORT, {"CVE-2024-22195": "templates are ours"}) == []


def test_npm_fails_on_high_and_critical_only():
    findings = audit.npm_findings(NPM_REPORT, {})
    assert findings == ["azurite (high): via tar", "tar (high): Arbitrary file overwrite"]
    assert audit.npm_findings(NPM_REPORT, {"GHSA-r628-mhmh-qjhw": "no untrusted tarballs"}) == [
        "azurite (high): via tar"
    ]


def test_an_ignore_entry_needs_its_reason(tmp_path: Path):
    good = tmp_path / "ok.txt"
    good.write_text("# comment\nGHSA-1234-abcd-efgh  only dev tooling reads it\n")
    assert audit.ignored_ids(good) == {"GHSA-1234-abcd-efgh": "only dev tooling reads it"}
    bad = tmp_path / "bad.txt"
    bad.write_text("GHSA-1234-abcd-efgh\n")
    with pytest.raises(SystemExit, match="needs a reason"):
        audit.ignored_ids(bad)


def _fake_run(stdout: str, stderr: str = "", returncode: int = 1):
    def run(*args, **kwargs):
        return subprocess.CompletedProcess(args, returncode, stdout=stdout, stderr=stderr)

    return run


def test_pip_audit_that_reached_no_advisory_warns_and_passes(monkeypatch):
    skipped = '{"dependencies": [{"name": "pydantic", "skip_reason": "Dependency not found on PyPI"}], "fixes": []}'
    monkeypatch.setattr(audit.subprocess, "run", _fake_run(skipped, returncode=0))
    assert audit.audit_python().unreachable
    monkeypatch.setattr(
        audit.subprocess, "run", _fake_run("", "requests.exceptions.ConnectionError: Max retries exceeded")
    )
    outcome = audit.audit_python()
    assert outcome.unreachable and outcome.findings == []


def test_npm_audit_endpoint_refused_warns_and_passes(monkeypatch, tmp_path):
    refused = (
        '{"message": "405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk"}'
    )
    monkeypatch.setattr(audit.subprocess, "run", _fake_run(refused))
    outcome = audit.audit_npm(tmp_path)
    assert "405" in outcome.unreachable and outcome.findings == []


def test_the_gate_exits_1_on_findings_and_0_when_only_unreachable(monkeypatch, capsys):
    monkeypatch.setattr(audit, "NODE_WORKSPACES", ())
    monkeypatch.setattr(audit, "audit_python", lambda: audit.Outcome("pip-audit", ["x==1: GHSA-1 (fixed in 2)"]))
    assert audit.main() == 1
    monkeypatch.setattr(audit, "audit_python", lambda: audit.Outcome("pip-audit", [], unreachable="offline"))
    assert audit.main() == 0
    assert "WARNING: pip-audit: advisory service unreachable (offline)" in capsys.readouterr().out
