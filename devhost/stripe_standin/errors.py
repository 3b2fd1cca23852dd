"""Errors answered the way Stripe answers them: `{"error": {"type", "message", "param", "code"}}`."""

from __future__ import annotations

import json


class StripeError(Exception):
    """An API error; the SDK maps `status` to its exception class (400/404 InvalidRequestError, 401 ...)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # Stripe's own field name
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict:
        error: dict = {"type": self.type, "message": self.message}
        if self.param is not None:
            error["param"] = self.param
        if self.code is not None:
            error["code"] = self.code
        return {"error": error}

    def to_json(self) -> bytes:
        return json.dumps(self.body(), indent=2).encode()


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, message, param=param, code=code)


def missing(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", param=param, code="parameter_missing")


def no_such(kind: str, object_id: str, param: str | None = "id") -> StripeError:
    """404 for the object a URL names; 400 for one a parameter names, as Stripe answers."""
    status = 404 if param == "id" else 400
    return StripeError(status, f"No such {kind}: '{object_id}'", param=param, code="resource_missing")
