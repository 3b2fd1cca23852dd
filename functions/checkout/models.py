"""The checkout service's edges: request/response bodies of its routes and the Stripe objects it reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.bus.events import LicenseType

# --- API ------------------------------------------------------------------------------------


class Money(BaseModel):
    amount_minor: int
    currency: str


class Notice(BaseModel):
    code: str
    image_id: UUID
    message: str


class CartItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_id: UUID
    license_type: LicenseType = "standard"


class CartItemOut(BaseModel):
    image_id: UUID
    license_type: LicenseType
    title: str
    price: Money
    added_at: datetime


class CartOut(BaseModel):
    items: list[CartItemOut]
    total: Money | None = Field(None, description="Sum of the items; null when the cart is empty.")
    notices: list[Notice] = Field(default_factory=list, description="Images dropped since the cart was last seen.")


class CheckoutOut(BaseModel):
    order_id: UUID
    checkout_url: str
    total: Money
    notices: list[Notice] = Field(default_factory=list)


class OrderLineOut(BaseModel):
    image_id: UUID
    license_type: LicenseType
    title: str
    price: Money


class OrderOut(BaseModel):
    id: UUID
    status: str
    total: Money
    lines: list[OrderLineOut]
    created_at: datetime
    paid_at: datetime | None = None
    refunded_at: datetime | None = None


class OrdersOut(BaseModel):
    orders: list[OrderOut]


class LicenseOut(BaseModel):
    id: UUID
    image_id: UUID
    license_type: LicenseType
    title: str
    order_id: UUID | None = None
    subscription_id: str | None = None
    issued_at: datetime
    usable: bool = Field(description="False once revoked (e.g. the order was refunded).")
    download_count: int
    download_url: str = Field(description="Relative URL that redirects to a short-lived download link.")


class LicensesOut(BaseModel):
    licenses: list[LicenseOut]


class LicenseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    license_type: LicenseType = "standard"


class SubscriptionCheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: str = Field(min_length=1, max_length=40, description="Plan name, e.g. 'basic-10'.")


class SubscriptionCheckoutOut(BaseModel):
    plan: str
    checkout_url: str


class SubscriptionOut(BaseModel):
    id: str
    plan: str
    status: str
    allotment: int = Field(description="Downloads per paid period.")
    remaining: int = Field(description="Downloads left in the current period.")
    current_period_end: datetime | None = None


class PlanOut(BaseModel):
    name: str
    downloads_per_month: int
    price: Money


class PlansOut(BaseModel):
    plans: list[PlanOut]


class WebhookOut(BaseModel):
    received: bool = True
    outcome: str


# --- Stripe objects (the fields we read; Stripe adds fields freely) ----------------------------


class _StripeObject(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


def stripe_id(value: str | dict[str, Any] | None) -> str | None:
    """An id from a field Stripe may send as an id or as an expanded object."""
    if isinstance(value, dict):
        return value.get("id")
    return value


class StripeCheckoutSession(_StripeObject):
    id: str
    mode: str = "payment"
    status: str | None = None
    payment_status: str
    amount_total: int | None = None
    currency: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    client_reference_id: str | None = None
    payment_intent: str | dict[str, Any] | None = None
    subscription: str | dict[str, Any] | None = None
    customer: str | dict[str, Any] | None = None


class StripeCharge(_StripeObject):
    id: str
    amount: int
    amount_refunded: int = 0
    currency: str
    refunded: bool = False
    payment_intent: str | dict[str, Any] | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class StripeSubscription(_StripeObject):
    id: str
    status: str
    customer: str | dict[str, Any] | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    current_period_end: int | None = None  # before API 2025-03-31; now on each item
    items: dict[str, Any] | None = None

    @property
    def period_end(self) -> int | None:
        if self.current_period_end is not None:
            return self.current_period_end
        data = (self.items or {}).get("data") or []
        ends = [item.get("current_period_end") for item in data if item.get("current_period_end")]
        return max(ends) if ends else None


class StripeInvoice(_StripeObject):
    id: str
    created: int
    status: str | None = None
    customer: str | dict[str, Any] | None = None
    subscription: str | dict[str, Any] | None = None  # before API 2025-03-31
    parent: dict[str, Any] | None = None  # since: parent.subscription_details.{subscription, metadata}
    subscription_details: dict[str, Any] | None = None
    period_end: int | None = None

    @property
    def subscription_id(self) -> str | None:
        details = (self.parent or {}).get("subscription_details") or {}
        return stripe_id(self.subscription) or stripe_id(details.get("subscription"))

    @property
    def subscription_metadata(self) -> dict[str, str]:
        details = (self.parent or {}).get("subscription_details") or self.subscription_details or {}
        return dict(details.get("metadata") or {})
