"""Bearer token validation: signature by `kid` from a JWKS, then issuer, audience and times.

The accepted algorithms are a fixed allow-list (RS256, ES256) checked before any
key is looked up; the token header only *selects* among them and must match the
key's own algorithm. That rules out `alg: none` and the HS256-with-public-key
confusion attack whatever the JWKS contains.

Keys come from a `KeySource`: a JWKS fetched over HTTPS (Entra), a JWKS file,
or an in-memory JWKS (the local issuer). Failures are one typed `InvalidToken`
with a short machine-readable reason, so the HTTP edge can answer 401 without
leaking more than that reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import jwt

from shared.auth.principal import Principal

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS: frozenset[str] = frozenset({"RS256", "ES256"})
# Real access tokens are a few KB; anything far larger is garbage we refuse to parse.
MAX_TOKEN_LENGTH = 16_384
MAX_JWKS_BYTES = 512 * 1024
MIN_RSA_BITS = 2048
REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")


class InvalidTokenReason(StrEnum):
    MALFORMED = "malformed"
    ALGORITHM_NOT_ALLOWED = "algorithm_not_allowed"
    MISSING_KID = "missing_kid"
    UNKNOWN_KID = "unknown_kid"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_ISSUER = "wrong_issuer"
    WRONG_AUDIENCE = "wrong_audience"
    MISSING_CLAIM = "missing_claim"
    INVALID_CLAIM = "invalid_claim"


class InvalidToken(Exception):
    """The caller's token is not acceptable; `reason` is safe to return to the caller."""

    def __init__(self, reason: InvalidTokenReason | str, detail: str | None = None) -> None:
        self.reason = InvalidTokenReason(reason)
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else str(self.reason))


class KeySourceUnavailable(Exception):
    """The issuer's keys could not be obtained. Not the caller's fault: answer 503, not 401."""


class JwksError(ValueError):
    """A JWKS document that holds no usable signing key."""


# --- key sets ----------------------------------------------------------------


def _usable(jwk: jwt.PyJWK) -> bool:
    if jwk.algorithm_name not in ALLOWED_ALGORITHMS or jwk.public_key_use not in (None, "sig"):
        return False
    data = jwk._jwk_data
    if jwk.key_type == "EC":
        return data.get("crv") == "P-256"  # ES256 is defined for P-256 only
    return getattr(jwk.key, "key_size", 0) >= MIN_RSA_BITS


class KeySet:
    """Immutable kid -> verification key map built from a JWKS document."""

    def __init__(self, keys: Mapping[str, jwt.PyJWK]) -> None:
        self._keys = dict(keys)

    @classmethod
    def from_jwks(cls, document: object) -> KeySet:
        if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
            raise JwksError("a JWKS must be an object with a 'keys' list")
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document["keys"]:
            # Skip, don't fail, on keys we can't use: issuers publish encryption keys
            # and other algorithms next to the signing keys we need.
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            try:
                jwk = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue
            if _usable(jwk):
                keys[entry["kid"]] = jwk
        if not keys:
            raise JwksError("the JWKS holds no RS256/ES256 signing key with a kid")
        return cls(keys)

    def get(self, kid: str) -> jwt.PyJWK | None:
        return self._keys.get(kid)

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)


class KeySource(Protocol):
    async def get_key(self, kid: str) -> jwt.PyJWK | None:
        """The verification key for `kid`, or None if the issuer has no such key."""
        ...


class StaticKeySource:
    """A JWKS held in memory (the local issuer's own public key)."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = KeySet.from_jwks(jwks)

    async def get_key(self, kid: str) -> jwt.PyJWK | None:
        return self._keys.get(kid)


class JwksFileKeySource:
    """A JWKS on disk; re-read when an unknown kid shows up and the file has changed."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._mtime_ns: int | None = None
        self._keys: KeySet | None = None

    def _load_if_changed(self) -> KeySet:
        try:
            mtime = self._path.stat().st_mtime_ns
            if self._keys is None or mtime != self._mtime_ns:
                self._keys = KeySet.from_jwks(json.loads(self._path.read_bytes()))
                self._mtime_ns = mtime
        except (OSError, ValueError) as exc:
            if self._keys is None:
                raise KeySourceUnavailable(f"cannot read JWKS file {self._path}: {exc}") from exc
            log.warning("keeping previous keys; JWKS file %s unreadable: %s", self._path, exc)
        return self._keys

    async def get_key(self, kid: str) -> jwt.PyJWK | None:
        key = self._keys.get(kid) if self._keys is not None else None
        return key if key is not None else self._load_if_changed().get(kid)


class RemoteJwksKeySource:
    """The issuer's JWKS endpoint (Entra: .../discovery/v2.0/keys), cached.

    Keys are cached for `cache_ttl`; an unknown kid triggers a refresh because
    that is how a key rotation first shows up. Refreshes are at most one per
    `min_refresh_interval`, so a flood of tokens with made-up kids can't turn
    into a flood of requests to the issuer. If a refresh fails, the keys we
    already have stay in use rather than locking everybody out.
    """

    def __init__(
        self,
        url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        cache_ttl: float = 3600.0,
        min_refresh_interval: float = 30.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        local = parts.hostname in {"localhost", "127.0.0.1", "::1"}
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            raise ValueError(f"JWKS URL must use https (got {url!r}); plain http is allowed for localhost only")
        self._url = url
        self._transport = transport
        self._ttl = cache_ttl
        self._min_interval = min_refresh_interval
        self._timeout = timeout
        self._clock = clock
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._last_attempt: float | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    async def get_key(self, kid: str) -> jwt.PyJWK | None:
        keys = await self._current()
        key = keys.get(kid)
        if key is None and self._may_refresh():
            key = (await self._refresh()).get(kid)
        return key

    def _may_refresh(self) -> bool:
        return self._last_attempt is None or self._clock() - self._last_attempt >= self._min_interval

    async def _current(self) -> KeySet:
        fresh = self._keys is not None and self._clock() - self._fetched_at < self._ttl
        if fresh or not self._may_refresh():
            return self._available()
        return await self._refresh()

    def _available(self) -> KeySet:
        if self._keys is None:
            raise KeySourceUnavailable(f"no keys from {self._url} yet")
        return self._keys

    def _get_lock(self) -> asyncio.Lock:
        # One lock per event loop: an asyncio.Lock can't be shared across loops
        # (tests run one loop per test; the Functions worker runs one for its life).
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def _refresh(self) -> KeySet:
        attempt_seen = self._last_attempt
        async with self._get_lock():
            if self._last_attempt != attempt_seen:
                return self._available()  # another request refreshed while we waited
            self._last_attempt = self._clock()
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("JWKS refresh from %s failed: %s", self._url, exc)
                return self._available()
            self._keys, self._fetched_at = keys, self._clock()
            return keys

    async def _fetch(self) -> KeySet:
        async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout) as client:
            response = await client.get(self._url, headers={"Accept": "application/json"})
        response.raise_for_status()
        if len(response.content) > MAX_JWKS_BYTES:
            raise JwksError(f"JWKS larger than {MAX_JWKS_BYTES} bytes")
        return KeySet.from_jwks(response.json())


# --- validation --------------------------------------------------------------

_CLAIM_ERRORS: tuple[tuple[type[Exception], InvalidTokenReason], ...] = (
    # Order matters: several of these subclass DecodeError / InvalidTokenError.
    (jwt.ExpiredSignatureError, InvalidTokenReason.EXPIRED),
    (jwt.ImmatureSignatureError, InvalidTokenReason.NOT_YET_VALID),
    (jwt.InvalidIssuerError, InvalidTokenReason.WRONG_ISSUER),
    (jwt.InvalidAudienceError, InvalidTokenReason.WRONG_AUDIENCE),
    (jwt.MissingRequiredClaimError, InvalidTokenReason.MISSING_CLAIM),
    (jwt.InvalidSignatureError, InvalidTokenReason.BAD_SIGNATURE),
    (jwt.InvalidAlgorithmError, InvalidTokenReason.ALGORITHM_NOT_ALLOWED),
    (jwt.InvalidIssuedAtError, InvalidTokenReason.INVALID_CLAIM),
    (jwt.exceptions.InvalidSubjectError, InvalidTokenReason.INVALID_CLAIM),
    (jwt.exceptions.InvalidJTIError, InvalidTokenReason.INVALID_CLAIM),
)


def _reason_for(exc: Exception) -> InvalidTokenReason:
    for kind, reason in _CLAIM_ERRORS:
        if isinstance(exc, kind):
            return reason
    return InvalidTokenReason.MALFORMED


class TokenValidator:
    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str | Sequence[str],
        leeway: float = 30.0,
        algorithms: Iterable[str] = ALLOWED_ALGORITHMS,
    ) -> None:
        self._algorithms = frozenset(algorithms)
        if not self._algorithms or not self._algorithms <= ALLOWED_ALGORITHMS:
            raise ValueError(f"algorithms must be a non-empty subset of {sorted(ALLOWED_ALGORITHMS)}")
        self._keys = keys
        self._issuer = issuer
        self._audience = audience if isinstance(audience, str) else list(audience)
        self._leeway = leeway

    async def validate(self, token: str) -> Principal:
        """The principal a token stands for; raises InvalidToken (or KeySourceUnavailable)."""
        return Principal.from_claims(await self.verify(token))

    async def verify(self, token: str) -> dict[str, Any]:
        """The verified claims of `token`."""
        header = self._header(token)
        key = await self._keys.get_key(header["kid"])
        if key is None:
            raise InvalidToken(InvalidTokenReason.UNKNOWN_KID)
        if key.algorithm_name != header["alg"]:
            raise InvalidToken(InvalidTokenReason.ALGORITHM_NOT_ALLOWED, "alg does not match the key")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[key.algorithm_name],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise InvalidToken(_reason_for(exc)) from exc
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise InvalidToken(InvalidTokenReason.INVALID_CLAIM, "sub")
        return claims

    def _header(self, token: str) -> dict[str, Any]:
        """Checks that need no key, done first so garbage never reaches the key source."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise InvalidToken(InvalidTokenReason.MALFORMED)
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise InvalidToken(InvalidTokenReason.MALFORMED) from exc
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise InvalidToken(InvalidTokenReason.ALGORITHM_NOT_ALLOWED)
        if "crit" in header:
            # RFC 7515 4.1.11: extensions we don't understand must be refused.
            raise InvalidToken(InvalidTokenReason.MALFORMED, "unsupported crit header")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken(InvalidTokenReason.MISSING_KID)
        return header
