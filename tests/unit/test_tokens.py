"""Bearer token validation: every forged token is refused with the right reason; real ones pass.

Forgeries are built byte by byte where PyJWT itself would refuse to produce
them (alg none, HS256 keyed with the public key), so the tests show the
attack and not a library error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from shared.auth import (
    InvalidToken,
    JwksError,
    JwksFileKeySource,
    KeySet,
    KeySourceUnavailable,
    LocalIssuer,
    RemoteJwksKeySource,
    StaticKeySource,
    TokenValidator,
    jwk_thumbprint,
)

ISSUER = "https://login.example/tenant/v2.0"
AUDIENCE = "api://stock-marketplace"
JWKS_URL = "https://login.example/tenant/discovery/v2.0/keys"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: Any, kid: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
    return {**algorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig"}


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "nbf": now, "exp": now + 600}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: Any, kid: str | None = "k1", alg: str = "RS256") -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(signature)}"


@pytest.fixture
def validator(rsa_key, ec_key) -> TokenValidator:
    jwks = {"keys": [public_jwk(rsa_key, "k1"), public_jwk(ec_key, "ec1")]}
    return TokenValidator(StaticKeySource(jwks), issuer=ISSUER, audience=AUDIENCE, leeway=30)


async def reason(validator: TokenValidator, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(token)
    return caught.value.reason


# --- accepted ------------------------------------------------------------------


async def test_a_valid_token_gives_the_principal_with_its_known_roles(validator, rsa_key):
    token = sign(claims(roles=["admin", "buyer", "Some.Other.AppRole"], name="Ada", email="ada@example.com"), rsa_key)

    principal = await validator.validate(token)

    assert principal.sub == "user-1"
    assert principal.roles == frozenset({"admin", "buyer"})  # unknown app roles grant nothing
    assert (principal.name, principal.email) == ("Ada", "ada@example.com")
    assert principal.claims["iss"] == ISSUER


async def test_no_roles_claim_means_no_roles(validator, rsa_key):
    assert (await validator.validate(sign(claims(), rsa_key))).roles == frozenset()


async def test_es256_tokens_are_accepted(validator, ec_key):
    principal = await validator.validate(sign(claims(roles=["contributor"]), ec_key, kid="ec1", alg="ES256"))
    assert principal.roles == {"contributor"}


async def test_clock_skew_within_leeway_is_tolerated(validator, rsa_key):
    now = int(time.time())
    assert await validator.validate(sign(claims(exp=now - 10), rsa_key))
    assert await validator.validate(sign(claims(nbf=now + 10, iat=now + 10), rsa_key))


# --- refused ---------------------------------------------------------------------


async def test_alg_none_is_refused(validator):
    token = raw_token({"alg": "none", "kid": "k1", "typ": "JWT"}, claims(roles=["admin"]))
    assert await reason(validator, token) == "algorithm_not_allowed"


async def test_hs256_signed_with_the_public_key_as_secret_is_refused(validator, rsa_key):
    # The classic key-confusion attack: the public key is public, so if a
    # verifier let the header pick HMAC it would accept this signature.
    secret = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header, payload = {"alg": "HS256", "kid": "k1", "typ": "JWT"}, claims(roles=["admin"])
    unsigned = raw_token(header, payload).rsplit(".", 1)[0]
    signature = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()

    assert await reason(validator, f"{unsigned}.{b64(signature)}") == "algorithm_not_allowed"


async def test_an_algorithm_that_does_not_match_the_key_is_refused(validator, rsa_key, ec_key):
    # ES256 is allowed, but kid k1 is an RSA key: the header may not switch algorithms.
    assert await reason(validator, sign(claims(), ec_key, kid="k1", alg="ES256")) == "algorithm_not_allowed"


async def test_expired_is_refused(validator, rsa_key):
    now = int(time.time())
    assert await reason(validator, sign(claims(iat=now - 7200, nbf=now - 7200, exp=now - 3600), rsa_key)) == "expired"


async def test_not_yet_valid_is_refused(validator, rsa_key):
    now = int(time.time())
    assert await reason(validator, sign(claims(nbf=now + 3600), rsa_key)) == "not_yet_valid"
    assert await reason(validator, sign(claims(iat=now + 3600), rsa_key)) == "not_yet_valid"


async def test_wrong_audience_is_refused(validator, rsa_key):
    assert await reason(validator, sign(claims(aud="api://someone-else"), rsa_key)) == "wrong_audience"


async def test_wrong_issuer_is_refused(validator, rsa_key):
    assert await reason(validator, sign(claims(iss="https://evil.example/"), rsa_key)) == "wrong_issuer"


async def test_unknown_kid_is_refused(validator, rsa_key):
    assert await reason(validator, sign(claims(), rsa_key, kid="nobody-knows")) == "unknown_kid"


async def test_missing_kid_is_refused(validator, rsa_key):
    assert await reason(validator, sign(claims(), rsa_key, kid=None)) == "missing_kid"


async def test_tampered_payload_is_refused(validator, rsa_key):
    header, _, signature = sign(claims(roles=["buyer"]), rsa_key).split(".")
    forged_payload = b64(json.dumps(claims(roles=["admin"])).encode())
    assert await reason(validator, f"{header}.{forged_payload}.{signature}") == "bad_signature"


async def test_a_token_signed_by_another_key_with_the_same_kid_is_refused(validator, other_rsa_key):
    assert await reason(validator, sign(claims(roles=["admin"]), other_rsa_key, kid="k1")) == "bad_signature"


@pytest.mark.parametrize("missing", ["exp", "sub", "aud", "iss"])
async def test_required_claims_must_be_present(validator, rsa_key, missing):
    assert await reason(validator, sign(claims(**{missing: None}), rsa_key)) == "missing_claim"


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c", "a.b.c.d.e", "...", "x" * 20_000, "bm90anNvbg.e30.c2ln", "😀.😀.😀"],
)
async def test_malformed_tokens_are_refused(validator, token):
    assert await reason(validator, token) == "malformed"


async def test_unsupported_critical_headers_are_refused(validator, rsa_key):
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "k1", "crit": ["exp"], "exp": 1})
    assert await reason(validator, token) == "malformed"


def test_the_allow_list_can_only_be_narrowed(rsa_key):
    keys = StaticKeySource({"keys": [public_jwk(rsa_key, "k1")]})
    with pytest.raises(ValueError):
        TokenValidator(keys, issuer=ISSUER, audience=AUDIENCE, algorithms=["RS256", "HS256"])


# --- JWKS -------------------------------------------------------------------------


def test_a_jwks_keeps_only_usable_signing_keys(rsa_key, ec_key):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point of the test
    p384 = ec.generate_private_key(ec.SECP384R1())
    jwks = {
        "keys": [
            public_jwk(rsa_key, "good"),
            {**public_jwk(rsa_key, "enc"), "use": "enc"},
            public_jwk(weak, "weak"),
            public_jwk(p384, "p384"),
            {"kty": "oct", "k": b64(b"secret"), "kid": "hmac"},
            {**public_jwk(ec_key, "noalg")},
            {"kty": "RSA", "kid": "broken"},
            "not-a-key",
            {k: v for k, v in public_jwk(rsa_key, "x").items() if k != "kid"},
        ]
    }
    assert KeySet.from_jwks(jwks).kids == {"good", "noalg"}


@pytest.mark.parametrize("document", [{}, {"keys": []}, {"keys": "x"}, [], {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}])
def test_a_jwks_without_usable_keys_is_an_error(document):
    with pytest.raises(JwksError):
        KeySet.from_jwks(document)


class JwksServer:
    """The issuer's JWKS endpoint at the HTTP boundary (httpx.MockTransport)."""

    def __init__(self, *keys: dict[str, Any]) -> None:
        self.keys = list(keys)
        self.requests = 0
        self.status = 200

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        self.requests += 1
        if self.status != 200:
            return httpx.Response(self.status, text="unavailable")
        return httpx.Response(200, json={"keys": self.keys})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def remote_validator(server: JwksServer, clock: Clock, **kwargs: Any) -> TokenValidator:
    source = RemoteJwksKeySource(JWKS_URL, transport=server.transport(), clock=clock, **kwargs)
    return TokenValidator(source, issuer=ISSUER, audience=AUDIENCE)


async def test_keys_are_fetched_over_https_once_and_cached(rsa_key):
    server, clock = JwksServer(public_jwk(rsa_key, "k1")), Clock()
    validator = remote_validator(server, clock)

    for _ in range(5):
        assert (await validator.validate(sign(claims(), rsa_key))).sub == "user-1"
    assert server.requests == 1


async def test_a_rotated_key_is_picked_up_on_its_first_token(rsa_key, other_rsa_key):
    server, clock = JwksServer(public_jwk(rsa_key, "k1")), Clock()
    validator = remote_validator(server, clock)
    await validator.validate(sign(claims(), rsa_key))

    clock.now += 60
    server.keys = [public_jwk(other_rsa_key, "k2")]  # the issuer rotates
    principal = await validator.validate(sign(claims(sub="after-rotation"), other_rsa_key, kid="k2"))

    assert principal.sub == "after-rotation"
    assert server.requests == 2


async def test_unknown_kids_refresh_at_most_once_per_interval(rsa_key):
    server, clock = JwksServer(public_jwk(rsa_key, "k1")), Clock()
    validator = remote_validator(server, clock, min_refresh_interval=30)
    await validator.validate(sign(claims(), rsa_key))

    clock.now += 31
    for i in range(20):  # a flood of made-up kids must not become a flood of fetches
        assert await reason(validator, sign(claims(), rsa_key, kid=f"made-up-{i}")) == "unknown_kid"
    assert server.requests == 2


async def test_keys_are_refetched_when_the_cache_expires(rsa_key):
    server, clock = JwksServer(public_jwk(rsa_key, "k1")), Clock()
    validator = remote_validator(server, clock, cache_ttl=3600)
    await validator.validate(sign(claims(), rsa_key))
    clock.now += 3601
    await validator.validate(sign(claims(), rsa_key))
    assert server.requests == 2


async def test_an_issuer_outage_keeps_the_keys_already_known(rsa_key):
    server, clock = JwksServer(public_jwk(rsa_key, "k1")), Clock()
    validator = remote_validator(server, clock, cache_ttl=60)
    await validator.validate(sign(claims(), rsa_key))

    server.status = 503
    clock.now += 120
    assert (await validator.validate(sign(claims(), rsa_key))).sub == "user-1"


async def test_no_keys_at_all_is_unavailable_not_an_invalid_token(rsa_key):
    server, clock = JwksServer(), Clock()
    server.status = 500
    validator = remote_validator(server, clock)
    with pytest.raises(KeySourceUnavailable):
        await validator.validate(sign(claims(), rsa_key))
    # ...and the next request within the interval does not hammer the issuer.
    with pytest.raises(KeySourceUnavailable):
        await validator.validate(sign(claims(), rsa_key))
    assert server.requests == 1


async def test_garbage_never_reaches_the_issuer(rsa_key):
    server, clock = JwksServer(public_jwk(rsa_key, "k1")), Clock()
    validator = remote_validator(server, clock)
    await reason(validator, "garbage")
    await reason(validator, raw_token({"alg": "none", "kid": "x"}, claims()))
    assert server.requests == 0


@pytest.mark.parametrize("url", ["http://login.example/keys", "ftp://login.example/keys", "keys.json"])
def test_jwks_must_come_over_https(url):
    with pytest.raises(ValueError):
        RemoteJwksKeySource(url)


def test_plain_http_is_allowed_for_localhost_only():
    RemoteJwksKeySource("http://localhost:7071/local-issuer/keys")


async def test_a_jwks_file_is_reread_when_it_changes(tmp_path: Path, rsa_key, other_rsa_key):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [public_jwk(rsa_key, "k1")]}))
    validator = TokenValidator(JwksFileKeySource(path), issuer=ISSUER, audience=AUDIENCE)
    await validator.validate(sign(claims(), rsa_key))

    path.write_text(json.dumps({"keys": [public_jwk(other_rsa_key, "k2")]}))
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert await validator.validate(sign(claims(), other_rsa_key, kid="k2"))


async def test_a_missing_jwks_file_is_unavailable(tmp_path: Path, rsa_key):
    validator = TokenValidator(JwksFileKeySource(tmp_path / "absent.json"), issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(KeySourceUnavailable):
        await validator.validate(sign(claims(), rsa_key))


# --- the local issuer ----------------------------------------------------------------


def test_thumbprint_matches_rfc_7638_example():
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRX"
        "jBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8"
        "KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xB"
        "niIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


async def test_local_issuer_tokens_validate_with_its_own_validator(tmp_path: Path):
    issuer = LocalIssuer(tmp_path / "auth", issuer="http://localhost:7071/local-issuer", audience=AUDIENCE)

    token = issuer.issue("contributor-7", ["contributor"], name="Cleo")
    principal = await issuer.validator().validate(token)

    assert (principal.sub, principal.roles, principal.name) == ("contributor-7", {"contributor"}, "Cleo")
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["kid"]) == ("RS256", issuer.kid)
    payload = jwt.decode(token, options={"verify_signature": False})
    assert {"iss", "aud", "sub", "iat", "nbf", "exp", "jti"} <= payload.keys()


async def test_local_issuer_ttl_bounds_the_token(tmp_path: Path):
    issuer = LocalIssuer(tmp_path, issuer=ISSUER, audience=AUDIENCE, leeway=0)
    with pytest.raises(InvalidToken) as caught:
        await issuer.validator().validate(issuer.issue("u", ttl=-1))
    assert caught.value.reason == "expired"


def test_local_issuer_key_is_generated_once_and_private(tmp_path: Path):
    first = LocalIssuer(tmp_path / "auth", issuer=ISSUER, audience=AUDIENCE)
    second = LocalIssuer(tmp_path / "auth", issuer=ISSUER, audience=AUDIENCE)

    assert first.kid == second.kid == jwk_thumbprint(first.jwks()["keys"][0])
    key_files = list((tmp_path / "auth").iterdir())
    assert [p.name for p in key_files] == ["signing-key.pem"]
    assert stat.S_IMODE(key_files[0].stat().st_mode) == 0o600


def test_local_issuer_jwks_publishes_no_private_material(tmp_path: Path):
    (jwk,) = LocalIssuer(tmp_path, issuer=ISSUER, audience=AUDIENCE).jwks()["keys"]
    assert set(jwk) == {"kty", "n", "e", "kid", "use", "alg"}


def test_local_issuer_refuses_unknown_roles(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown roles"):
        LocalIssuer(tmp_path, issuer=ISSUER, audience=AUDIENCE).issue("u", ["admni"])


async def test_a_token_from_another_local_issuer_directory_is_refused(tmp_path: Path):
    ours = LocalIssuer(tmp_path / "a", issuer=ISSUER, audience=AUDIENCE)
    theirs = LocalIssuer(tmp_path / "b", issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(InvalidToken) as caught:
        await ours.validator().validate(theirs.issue("intruder", ["admin"]))
    assert caught.value.reason == "unknown_kid"
