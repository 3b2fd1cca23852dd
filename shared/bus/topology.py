"""Topics, subscriptions and their subject filters, declared once.

The local Postgres transport routes with this table and `infra/` renders the
same table into Service Bus resources (`python -m shared.bus.topology > infra/servicebus.topology.json`),
so the two cannot drift. A subscription receives a message when its subject is
in `subjects` (a SQL filter `sys.label IN (...)` on Service Bus).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Subscription:
    name: str
    subjects: tuple[str, ...]
    max_delivery_count: int = 10
    lock_duration_seconds: int = 60

    @property
    def sql_filter(self) -> str:
        """The Service Bus rule that routes like the local transport.

        The subject travels as the message's Label (AMQP `subject`). A dead letter replayed by an admin
        (shared/bus/servicebus_dead_letters.py) carries replay_to and reaches only that subscription.
        """
        subjects = ", ".join(f"'{subject}'" for subject in self.subjects)
        return f"sys.Label IN ({subjects}) AND (replay_to IS NULL OR replay_to = '{self.name}')"


@dataclass(frozen=True)
class Topic:
    name: str
    subscriptions: tuple[Subscription, ...] = field(default_factory=tuple)
    duplicate_detection_minutes: int = 10

    def subscription(self, name: str) -> Subscription:
        for sub in self.subscriptions:
            if sub.name == name:
                return sub
        raise KeyError(f"topic {self.name!r} has no subscription {name!r}")


_IMAGE_EVENTS = (
    "image.uploaded",
    "image.processed",
    "image.reanalyzed",
    "image.processing_failed",
    "image.flagged",
    "image.approved",
    "image.rejected",
    "image.updated",
    "image.removed",
    "pricing.updated",
)

TOPICS: dict[str, Topic] = {
    t.name: t
    for t in (
        Topic(
            "images",
            (
                # ingestion keeps each image's catalogue record (status, reasons) current for its contributor
                Subscription(
                    "ingestion",
                    (
                        "image.processed",
                        "image.processing_failed",
                        "image.flagged",
                        "image.approved",
                        "image.rejected",
                        "image.updated",
                        "image.removed",
                    ),
                ),
                # processing also withdraws the public renditions of rejected and taken-down images
                Subscription("processing", ("image.uploaded", "image.rejected", "image.removed")),
                # moderation owns the listing: a re-embed's new tags and embedding reach search through it
                Subscription("moderation", ("image.processed", "image.reanalyzed")),
                # search-sync also keeps pending/flagged images (not public) for portfolio and admin search
                Subscription(
                    "search-sync",
                    (
                        "image.processed",
                        "image.flagged",
                        "image.approved",
                        "image.rejected",
                        "image.updated",
                        "image.removed",
                        "pricing.updated",
                    ),
                ),
                Subscription("checkout", ("image.approved", "image.updated", "image.removed", "pricing.updated")),
            ),
        ),
        Topic(
            "orders",
            (
                Subscription("payouts", ("order.completed", "order.refunded", "license.issued")),
                Subscription("search-sync", ("order.completed", "order.refunded")),  # popularity
            ),
        ),
        Topic(
            "payouts",
            (
                Subscription("notifications", ("payout.batch.created", "payout.paid", "payout.failed")),
                # payouts' own transfer function: one message per approved batch item (fan-out)
                Subscription("payouts-transfers", ("payout.transfer.requested",), max_delivery_count=20),
            ),
        ),
        # Every service's admin actions, appended to the one audit log that moderation serves.
        Topic("audit", (Subscription("moderation", ("audit.recorded",)),)),
        Topic("platform", (Subscription("health", ("platform.ping",)),)),
    )
}


def topic(name: str) -> Topic:
    try:
        return TOPICS[name]
    except KeyError:
        raise KeyError(f"unknown topic {name!r}; declare it in shared/bus/topology.py") from None


def subscriptions_for(topic_name: str, subject: str) -> list[Subscription]:
    return [s for s in topic(topic_name).subscriptions if subject in s.subjects]


def as_json() -> str:
    """The topology as JSON, the input of infra/servicebus.bicep."""
    return json.dumps(
        [
            {
                "name": t.name,
                "duplicateDetectionMinutes": t.duplicate_detection_minutes,
                "subscriptions": [
                    {
                        "name": s.name,
                        "subjects": list(s.subjects),
                        "sqlFilter": s.sql_filter,
                        "maxDeliveryCount": s.max_delivery_count,
                        "lockDurationSeconds": s.lock_duration_seconds,
                    }
                    for s in t.subscriptions
                ],
            }
            for t in TOPICS.values()
        ],
        indent=2,
    )


if __name__ == "__main__":  # pragma: no cover - used by infra tooling
    sys.stdout.write(as_json() + "\n")
