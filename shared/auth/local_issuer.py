"""A local token issuer standing in for Entra ID when the app runs on one machine.

It signs RS256 tokens with a key pair generated once into `<VAR_DIR>/auth`, so
tokens stay valid across devhost restarts and every process on the machine
(devhost, CLI, tests) signs and verifies with the same key. It never runs in
Azure: there AUTH_JWKS_URL points at the real issuer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from shared.auth.principal import KNOWN_ROLES
from shared.auth.tokens import StaticKeySource, TokenValidator
from shared.config import Settings

KEY_FILE = "signing-key.pem"
KEY_BITS = 2048
DEFAULT_TTL_SECONDS = 3600


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint of an RSA JWK: SHA-256 over its required members, sorted, no spaces."""
    required = {name: jwk[name] for name in ("e", "kty", "n")}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def _load_or_create_key(directory: Path) -> rsa.RSAPrivateKey:
    path = directory / KEY_FILE
    if not path.exists():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Write a private temp file, then hard-link it into place: link() fails if
        # another process won the race, and then we use its key instead of ours.
        tmp = directory / f".{KEY_FILE}.{uuid.uuid4().hex}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < KEY_BITS:
        raise ValueError(f"{path} must hold an RSA private key of at least {KEY_BITS} bits; delete it to regenerate")
    return key


class LocalIssuer:
    def __init__(self, directory: Path, *, issuer: str, audience: str, leeway: float = 30.0) -> None:
        self.issuer = issuer
        self.audience = audience
        self._leeway = leeway
        self._private_key = _load_or_create_key(directory)
        public = RSAAlgorithm.to_jwk(self._private_key.public_key(), as_dict=True)
        self.kid = jwk_thumbprint(public)
        # Only the public members RFC 7518 defines for RSA, plus how to use it
        # (PyJWT's `key_ops` is dropped: RFC 7517 says not to combine it with `use`).
        self._jwk = {"kty": "RSA", "n": public["n"], "e": public["e"], "kid": self.kid, "use": "sig", "alg": "RS256"}

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalIssuer:
        return cls(
            settings.auth_dir,
            issuer=settings.AUTH_ISSUER,
            audience=settings.AUTH_AUDIENCE,
            leeway=settings.AUTH_LEEWAY_SECONDS,
        )

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self._private_key.public_key()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(self._jwk)]}

    def issue(
        self,
        sub: str,
        roles: Iterable[str] = (),
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        name: str | None = None,
        email: str | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        audience: str | None = None,
    ) -> str:
        roles = sorted(set(roles))
        unknown = set(roles) - KNOWN_ROLES
        if unknown:
            # A typo here would mint a token that silently grants nothing.
            raise ValueError(f"unknown roles {sorted(unknown)}; known: {sorted(KNOWN_ROLES)}")
        now = int(time.time())
        claims: dict[str, Any] = {
            **(extra_claims or {}),
            "iss": self.issuer,
            "aud": audience or self.audience,  # an ID token's audience is the client, not the API
            "sub": sub,
            "roles": roles,
            "iat": now,
            "nbf": now,
            "exp": now + int(ttl),
            "jti": uuid.uuid4().hex,
        }
        if name is not None:
            claims["name"] = name
        if email is not None:
            claims["email"] = email
        return jwt.encode(claims, self._private_key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})

    def validator(self) -> TokenValidator:
        return TokenValidator(
            StaticKeySource(self.jwks()), issuer=self.issuer, audience=self.audience, leeway=self._leeway
        )
