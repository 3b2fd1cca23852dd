"""The RBAC matrix: every registered HTTP route, called as anonymous, buyer, contributor, a second
contributor and admin, answers 401, 403, 404 (another contributor's private data) or success.

Routes come from `shared.http.ROUTES` after importing function_app.py, so a route added later shows
up here by itself; its expectations come from its declared `roles` plus its entry in
tests/rbac_rules.py, and a route without an entry fails with "declare the role rule for ...".
Requests go in-process through the entry points devhost serves, on a real database and Azurite.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import function_app  # noqa: F401  (importing registers every service's routes)
from shared.http import ANYONE, ROUTES, SIGNED_IN, RouteSpec
from tests.rbac_rules import PERSONAS, RULES, Context, Persona, RouteRule, expected_status, fixed

ROUTE_KEYS = {(spec.method, spec.path): spec for spec in ROUTES}


@pytest.fixture(scope="module")
def stripe_standin() -> Iterator[str]:
    """The local Stripe stand-in, so checkout routes succeed for real instead of failing on Stripe."""
    from devhost.stripe_standin import StripeStandin
    from shared.config import load_settings

    standin = StripeStandin.from_settings(load_settings(STRIPE_STANDIN_PORT=0), webhook_url="http://127.0.0.1:9/")
    url = standin.start()
    try:
        yield url
    finally:
        standin.stop()


@pytest.fixture
def api_settings_overrides(stripe_standin: str) -> dict[str, str]:
    return {"STRIPE_API_BASE": stripe_standin}


def _id(spec: RouteSpec) -> str:
    return f"{spec.method} {spec.path}"


def _rule_for(spec: RouteSpec) -> RouteRule:
    rule = RULES.get((spec.method, spec.path))
    if rule is None:
        pytest.fail(
            f"declare the role rule for {spec.method} {spec.path} in tests/rbac_rules.py "
            f"(it is declared roles={spec.roles!r}; say how to call it and whether it is owner-scoped)"
        )
    return rule


@pytest.mark.parametrize("spec", ROUTES, ids=_id)
async def test_every_route_answers_each_persona_as_its_role_rule_says(spec, api_app):
    rule = _rule_for(spec)
    for subscription in rule.subscriptions:
        api_app.start_subscription(subscription)
    ctx = Context(api_app)
    outcomes = []
    for persona in PERSONAS:
        call = await rule.request(ctx)
        token = api_app.token(persona.sub, *persona.roles) if persona.sub else None
        response = await api_app.request(
            spec.method,
            call.path,
            token=token,
            query=call.query,
            json_body=call.json_body,
            headers=call.headers,
            body=call.body,
        )
        expected = expected_status(spec, rule, persona)
        allowed = expected if isinstance(expected, frozenset) else {expected}
        outcomes.append((persona.name, response.status, sorted(allowed), response.body[:300]))
    wrong = [o for o in outcomes if o[1] not in o[2]]
    assert not wrong, f"{_id(spec)}: (persona, got, expected, body) {wrong}"


def test_every_role_rule_names_a_registered_route():
    stale = sorted(set(RULES) - set(ROUTE_KEYS))
    assert not stale, f"tests/rbac_rules.py has rules for routes that no longer exist: {stale}"


def test_admin_routes_are_for_admins_only():
    # Seed requirement: no contributor or buyer token ever reaches an admin route.
    too_open = [_id(s) for s in ROUTES if s.path.startswith("/api/admin/") and s.roles != frozenset({"admin"})]
    assert too_open == []


def test_contributor_routes_never_admit_buyers_or_the_anonymous():
    open_ = [
        _id(s)
        for s in ROUTES
        if s.path.startswith("/api/contributor/") and (s.roles in (ANYONE, SIGNED_IN) or "buyer" in s.roles)
    ]
    assert open_ == []


# --- the expectations themselves ----------------------------------------------------------------------


def _spec(roles) -> RouteSpec:
    return RouteSpec(method="GET", route="x/{id}", name="x", roles=roles, summary="x")


def _persona(name: str) -> Persona:
    return next(p for p in PERSONAS if p.name == name)


@pytest.mark.parametrize(
    ("roles", "owner_scoped", "expected"),
    [
        (ANYONE, False, {"anonymous": 200, "buyer": 200, "contributor": 200, "other contributor": 200, "admin": 200}),
        (
            SIGNED_IN,
            False,
            {"anonymous": 401, "buyer": 200, "contributor": 200, "other contributor": 200, "admin": 200},
        ),
        (
            frozenset({"admin"}),
            False,
            {"anonymous": 401, "buyer": 403, "contributor": 403, "other contributor": 403, "admin": 200},
        ),
        (
            frozenset({"contributor"}),
            True,
            {"anonymous": 401, "buyer": 403, "contributor": 200, "other contributor": 404, "admin": 403},
        ),
        (
            frozenset({"buyer"}),
            False,
            {"anonymous": 401, "buyer": 200, "contributor": 403, "other contributor": 403, "admin": 403},
        ),
    ],
)
def test_expectations_follow_the_declared_roles_and_ownership(roles, owner_scoped, expected):
    rule = RouteRule(fixed("x/1"), owner_scoped=owner_scoped)
    got = {}
    for persona in PERSONAS:
        status = expected_status(_spec(roles), rule, persona)
        got[persona.name] = min(status) if isinstance(status, frozenset) else status
    assert got == expected
