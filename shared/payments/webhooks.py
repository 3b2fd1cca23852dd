"""Stripe webhook verification: signature and freshness are checked before anything is parsed."""

from __future__ import annotations

import json
from typing import Any

import stripe
from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Stripe's own default: a signed payload older than this is a replay, whatever its signature.
WEBHOOK_TOLERANCE_SECONDS = 300


class InvalidWebhook(ValueError):
    """The request is not a fresh, authentic Stripe event; answer 400 and change nothing."""


class EventData(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    object: dict[str, Any]
    previous_attributes: dict[str, Any] | None = None


class StripeEvent(BaseModel):
    """The envelope of a (snapshot) Stripe event; `data.object` is read by type-specific models."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(min_length=1, max_length=255)
    object: str = "event"
    type: str = Field(min_length=1, max_length=255)
    created: int
    livemode: bool = False
    api_version: str | None = None
    data: EventData

    @property
    def payload(self) -> dict[str, Any]:
        return self.data.object


def verify_webhook(
    payload: bytes, signature_header: str | None, secret: str, *, tolerance: int = WEBHOOK_TOLERANCE_SECONDS
) -> StripeEvent:
    """The event in `payload` if `signature_header` proves Stripe signed exactly these bytes recently.

    Raises InvalidWebhook for a missing, malformed, forged or stale signature, and for a body
    that is signed but not a Stripe event (never trusted enough to be looked at before this).
    """
    try:
        stripe.WebhookSignature.verify_header(payload, signature_header, secret, tolerance)
    except stripe.SignatureVerificationError as exc:
        raise InvalidWebhook(_first_sentence(str(exc.user_message or exc))) from None
    except UnicodeDecodeError:
        raise InvalidWebhook("the body is not UTF-8") from None
    try:
        return StripeEvent.model_validate(json.loads(payload))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError; ValidationError is a ValueError too
        what = "not a Stripe event" if isinstance(exc, ValidationError) else "malformed JSON"
        raise InvalidWebhook(f"the signed body is {what}") from None


def _first_sentence(text: str) -> str:
    return text.split(". ")[0].rstrip(".")
