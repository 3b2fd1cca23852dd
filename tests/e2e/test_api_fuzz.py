"""Property-based fuzzing of every documented route (schemathesis) against a running devhost.

For generated requests, with and without an admin token, each response must be one the OpenAPI
document declares, carry its declared content type and schema, and never be a 5xx.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.e2e.devhost_process import devhost_environment, start_devhost, stop_devhost, token

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("fuzz")]


@pytest.fixture(scope="module")
def fuzz_devhost(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("fuzz-var")
    env = devhost_environment(var_dir)
    env["RATE_LIMIT_PER_IP_PER_MINUTE"] = "100000"  # the fuzzer is one client sending thousands of requests
    env["RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE"] = "100000"
    env["SEARCH_ANONYMOUS_PER_IP_PER_MINUTE"] = "100000"
    env["UPLOAD_QUOTA_FILES_PER_DAY"] = "100000"
    proc = start_devhost(env, var_dir.parent / f"fuzz-{env['DEVHOST_PORT']}.log")
    try:
        yield {"base": f"http://127.0.0.1:{env['DEVHOST_PORT']}", "admin": token(env, "--role", "admin")}
    finally:
        stop_devhost(proc)


@pytest.fixture(scope="module")
def api_schema(fuzz_devhost):
    schema = schemathesis.openapi.from_url(f"{fuzz_devhost['base']}/api/openapi.json")
    # NUL characters are refused at the edge (PostgreSQL text cannot hold them), a rule the JSON
    # Schema of each string does not spell out; and the bearer token is the test's to set, so the
    # fuzzer must not generate (or drop) the Authorization header itself.
    schema.config.generation.update(allow_x00=False, with_security_parameters=False)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")

# Routes whose requests are valid only with content no schema can describe (a Stripe signature over
# the exact body; the bytes of a real picture): a schema-valid request is rightly refused there, so
# "schema-valid means accepted" is not checked; every other check still is.
CONTENT_CHECKED_ROUTES = {
    ("POST", "/api/webhooks/stripe"),
    ("POST", "/api/webhooks/stripe-connect"),
    ("POST", "/api/search/by-image"),
    # A royalty table's levels must strictly increase and it must take effect from now on: rules across
    # items and against the clock, which no schema states.
    ("POST", "/api/admin/royalty-tables"),
    # A paging cursor is valid only as the API handed it out (an opaque key of the last row shown).
    ("GET", "/api/admin/payout-batches/{id}/payouts"),
    ("GET", "/api/admin/payout-batches/{id}/exclusions"),
}


def _excluded(case) -> list:
    return [positive_data_acceptance] if (case.method.upper(), case.path) in CONTENT_CHECKED_ROUTES else []


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_anonymous_requests_get_documented_answers(case):
    case.call_and_validate(excluded_checks=_excluded(case))


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_admin_requests_get_documented_answers(case, fuzz_devhost):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzz_devhost['admin']}"}, excluded_checks=_excluded(case)
    )
