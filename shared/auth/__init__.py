"""Authentication (bearer JWTs), the caller's identity and roles, and rate limiting."""

from __future__ import annotations

from shared.auth.local_issuer import LocalIssuer, jwk_thumbprint
from shared.auth.principal import KNOWN_ROLES, Principal, Role, roles_from_claim
from shared.auth.rate_limit import InMemoryRateLimiter, RateDecision, RateLimiter
from shared.auth.tokens import (
    ALLOWED_ALGORITHMS,
    InvalidToken,
    InvalidTokenReason,
    JwksError,
    JwksFileKeySource,
    KeySet,
    KeySource,
    KeySourceUnavailable,
    RemoteJwksKeySource,
    StaticKeySource,
    TokenValidator,
)
from shared.config import Settings


def validator_from_settings(settings: Settings) -> TokenValidator:
    """The validator the app uses: the issuer at AUTH_JWKS_URL, else the local issuer's key."""
    if settings.AUTH_JWKS_URL:
        return TokenValidator(
            RemoteJwksKeySource(settings.AUTH_JWKS_URL),
            issuer=settings.AUTH_ISSUER,
            audience=settings.AUTH_AUDIENCE,
            leeway=settings.AUTH_LEEWAY_SECONDS,
        )
    if settings.APP_ENV == "azure":  # config validation refuses this too; never trust a key file in Azure
        raise RuntimeError("the local token issuer is for local runs only; set AUTH_JWKS_URL")
    return LocalIssuer.from_settings(settings).validator()


__all__ = [
    "ALLOWED_ALGORITHMS",
    "KNOWN_ROLES",
    "InMemoryRateLimiter",
    "InvalidToken",
    "InvalidTokenReason",
    "JwksError",
    "JwksFileKeySource",
    "KeySet",
    "KeySource",
    "KeySourceUnavailable",
    "LocalIssuer",
    "Principal",
    "RateDecision",
    "RateLimiter",
    "RemoteJwksKeySource",
    "Role",
    "StaticKeySource",
    "TokenValidator",
    "jwk_thumbprint",
    "roles_from_claim",
    "validator_from_settings",
]
