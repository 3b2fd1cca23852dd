"""The bus topology is declared once; infra and the event contracts must agree with it.

infra/servicebus.bicep deploys whatever infra/servicebus.topology.json says, and
the local transport routes with shared.bus.topology. If the committed JSON
drifts from the Python table, Azure would route differently from local runs:
regenerate it with `python -m shared.bus.topology > infra/servicebus.topology.json`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.bus import events, topology

INFRA = Path(__file__).resolve().parents[2] / "infra"


def test_committed_servicebus_topology_matches_the_python_table() -> None:
    committed = (INFRA / "servicebus.topology.json").read_text(encoding="utf-8")
    assert json.loads(committed) == json.loads(topology.as_json()), (
        "infra/servicebus.topology.json is stale: run `python -m shared.bus.topology > infra/servicebus.topology.json`"
    )


def test_every_event_is_routed_to_a_subscription_on_its_topic() -> None:
    unrouted = [
        subject for subject, model in events.EVENT_TYPES.items() if not topology.subscriptions_for(model.topic, subject)
    ]
    assert unrouted == [], f"events nobody subscribes to: {unrouted}"


def test_every_subscription_subject_is_a_registered_event_of_that_topic() -> None:
    unknown = [
        (t.name, s.name, subject)
        for t in topology.TOPICS.values()
        for s in t.subscriptions
        for subject in s.subjects
        if subject not in events.EVENT_TYPES or events.EVENT_TYPES[subject].topic != t.name
    ]
    assert unknown == [], f"subscription filters naming no event of their topic: {unknown}"


def test_names_fit_service_bus_limits() -> None:
    # Topic names: up to 260 chars; subscription names: 1-50 of letters, digits, '.', '-', '_'.
    # A name Service Bus refuses would only fail at deployment time.
    for t in topology.TOPICS.values():
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,259}", t.name), t.name
        assert 1 <= t.duplicate_detection_minutes <= 7 * 24 * 60
        for s in t.subscriptions:
            assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,49}", s.name), s.name
            assert 5 <= s.lock_duration_seconds <= 300  # Service Bus lock: 5 s .. 5 min
            assert 1 <= s.max_delivery_count <= 2000
            assert s.subjects, f"{t.name}/{s.name} would receive nothing"
            # The subject lands inside a single-quoted SQL literal in the $Default rule.
            assert all("'" not in subject for subject in s.subjects)


def test_each_subscriptions_service_bus_filter_admits_exactly_its_subjects() -> None:
    # What Bicep deploys as the $Default rule (tests/unit/test_infra_bicep.py follows it into the templates).
    for t in topology.TOPICS.values():
        for s in t.subscriptions:
            listed = re.fullmatch(
                r"sys\.Label IN \((.*)\) AND \(replay_to IS NULL OR replay_to = '(.*)'\)", s.sql_filter
            )
            assert listed, s.sql_filter
            assert re.findall(r"'([^']*)'", listed.group(1)) == list(s.subjects)
            assert listed.group(2) == s.name
