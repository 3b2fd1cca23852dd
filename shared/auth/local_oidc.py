"""The local issuer as an OpenID Connect provider: authorization code + PKCE, refresh, end-session.

Browsers sign in to the portals through this on one machine, and through Entra ID
on Azure, with the same client code: only the authority and client id differ.
It keeps its codes and refresh tokens in memory (one devhost process), stores only
their SHA-256, and answers every failure with the RFC 6749 error code a client
library understands. The access tokens it hands out are `LocalIssuer.issue`
tokens, so the API validates them exactly as it validates any other.

Redirect URIs are matched exactly against an allow-list (RFC 9700 4.1.3). An entry
that is a bare path ("/callback/") means that path on the origin the browser is
using, because devhost runs on a port chosen at start (tests use free ports).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt

from shared.auth.local_issuer import LocalIssuer
from shared.auth.principal import KNOWN_ROLES
from shared.config import Settings

CODE_TTL_SECONDS = 60  # RFC 6749 4.1.2 recommends at most ten minutes; a browser needs one.
SUPPORTED_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # RFC 7636 4.1
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")  # base64url of a SHA-256, unpadded
SUBJECT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class OAuthError(Exception):
    """An RFC 6749 error: `error` is the registered code, `description` is for the person reading it."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class UnsafeRedirect(OAuthError):
    """The client or redirect URI is not registered: never redirect, show the error (RFC 6749 4.1.2.1)."""


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated `GET /authorize`: everything the sign-in page must carry to its form post."""

    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str

    def as_fields(self) -> dict[str, str]:
        fields = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }
        if self.state is not None:
            fields["state"] = self.state
        if self.nonce is not None:
            fields["nonce"] = self.nonce
        return fields


@dataclass(slots=True)
class _Code:
    request: AuthorizationRequest
    sub: str
    roles: tuple[str, ...]
    sid: str
    expires_at: float
    used: bool = False


@dataclass(slots=True)
class _Refresh:
    client_id: str
    sub: str
    roles: tuple[str, ...]
    scope: str
    sid: str
    expires_at: float
    rotated: bool = False


@dataclass(slots=True)
class _Store:
    codes: dict[str, _Code] = field(default_factory=dict)
    refresh: dict[str, _Refresh] = field(default_factory=dict)
    revoked_sessions: dict[str, float] = field(default_factory=dict)


class LocalOidcProvider:
    def __init__(
        self,
        issuer: LocalIssuer,
        *,
        client_id: str,
        redirect_uris: Iterable[str],
        post_logout_redirect_uris: Iterable[str],
        access_token_ttl: int = 900,
        refresh_token_ttl: int = 8 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self._redirects = tuple(redirect_uris)
        self._logout_redirects = tuple(post_logout_redirect_uris)
        self.access_token_ttl = access_token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        self._clock = clock
        self._store = _Store()

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalOidcProvider:
        if settings.APP_ENV == "azure":  # settings refuse this too: Entra ID signs people in on Azure
            raise RuntimeError("the local OIDC provider is for local runs only")
        return cls(
            LocalIssuer.from_settings(settings),
            client_id=settings.AUTH_LOCAL_CLIENT_ID,
            redirect_uris=_split(settings.AUTH_LOCAL_REDIRECT_URIS),
            post_logout_redirect_uris=_split(settings.AUTH_LOCAL_POST_LOGOUT_REDIRECT_URIS),
            access_token_ttl=settings.AUTH_LOCAL_ACCESS_TOKEN_SECONDS,
            refresh_token_ttl=settings.AUTH_LOCAL_REFRESH_TOKEN_SECONDS,
        )

    # --- discovery ------------------------------------------------------------

    def discovery(self, base_url: str) -> dict[str, Any]:
        """The OpenID Provider metadata; endpoints on the origin the caller used (`base_url` ends in /auth)."""
        return {
            "issuer": self.issuer.issuer,
            "authorization_endpoint": f"{base_url}/authorize",
            "token_endpoint": f"{base_url}/token",
            "jwks_uri": f"{base_url}/jwks",
            "end_session_endpoint": f"{base_url}/logout",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": sorted(SUPPORTED_SCOPES),
            "token_endpoint_auth_methods_supported": ["none"],
            "claims_supported": ["sub", "name", "roles", "sid", "nonce", "iss", "aud", "exp", "iat"],
        }

    # --- authorize ------------------------------------------------------------

    def _redirect_allowed(self, uri: str, origin: str, allowed: tuple[str, ...]) -> bool:
        parts = urlsplit(uri)
        if parts.fragment or not parts.scheme or not parts.netloc:
            return False  # RFC 6749 3.1.2: absolute, no fragment
        for entry in allowed:
            if entry.startswith("/"):
                if f"{parts.scheme}://{parts.netloc}" == origin and (parts.path or "/") == entry and not parts.query:
                    return True
            elif uri == entry:
                return True
        return False

    def check_authorization(self, params: dict[str, str], origin: str) -> AuthorizationRequest:
        """Validate an authorization request. UnsafeRedirect: show it; OAuthError: redirect it to the client."""
        client_id = params.get("client_id", "")
        if client_id != self.client_id:
            raise UnsafeRedirect("unauthorized_client", f"Unknown client_id {client_id!r}.")
        redirect_uri = params.get("redirect_uri", "")
        if not self._redirect_allowed(redirect_uri, origin, self._redirects):
            raise UnsafeRedirect("invalid_request", f"redirect_uri {redirect_uri!r} is not registered for this client.")
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "Only response_type=code is supported.")
        scopes = params.get("scope", "").split()
        if "openid" not in scopes:
            raise OAuthError("invalid_scope", "The scope must include openid.")
        if unknown := set(scopes) - SUPPORTED_SCOPES:
            raise OAuthError("invalid_scope", f"Unsupported scope(s): {' '.join(sorted(unknown))}.")
        challenge = params.get("code_challenge", "")
        if params.get("code_challenge_method") != "S256" or not _CHALLENGE.fullmatch(challenge):
            raise OAuthError("invalid_request", "PKCE is required: a code_challenge with code_challenge_method=S256.")
        if params.get("prompt") == "none":
            raise OAuthError("login_required", "The local issuer keeps no session; sign in interactively.")
        return AuthorizationRequest(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=" ".join(dict.fromkeys(scopes)),
            state=params.get("state"),
            nonce=params.get("nonce"),
            code_challenge=challenge,
        )

    def issue_code(self, request: AuthorizationRequest, sub: str, roles: Iterable[str]) -> str:
        """The person picked who they are: a single-use code bound to the client, redirect URI and challenge."""
        if not SUBJECT_PATTERN.fullmatch(sub):
            raise ValueError("a user id is 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter")
        roles = tuple(sorted(set(roles)))
        if not roles or not set(roles) <= KNOWN_ROLES:
            raise ValueError(f"pick a role: {', '.join(sorted(KNOWN_ROLES))}")
        self._purge()
        code = secrets.token_urlsafe(32)
        self._store.codes[_digest(code)] = _Code(
            request, sub, roles, sid=secrets.token_hex(16), expires_at=self._clock() + CODE_TTL_SECONDS
        )
        return code

    # --- token ----------------------------------------------------------------

    def token(self, form: dict[str, str]) -> dict[str, Any]:
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required.")
        if form.get("client_id") != self.client_id:
            raise OAuthError("invalid_client", "Unknown or missing client_id.", status=401)
        self._purge()
        if grant_type == "authorization_code":
            return self._redeem_code(form)
        if grant_type == "refresh_token":
            return self._refresh(form)
        raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported.")

    def _redeem_code(self, form: dict[str, str]) -> dict[str, Any]:
        code, verifier, redirect_uri = form.get("code"), form.get("code_verifier"), form.get("redirect_uri")
        if not code or not redirect_uri:
            raise OAuthError("invalid_request", "code and redirect_uri are required.")
        if not verifier or not _VERIFIER.fullmatch(verifier):
            raise OAuthError("invalid_request", "code_verifier is required (43 to 128 unreserved characters).")
        grant = self._store.codes.get(_digest(code))
        if grant is None or grant.expires_at <= self._clock():
            raise OAuthError("invalid_grant", "The authorization code is unknown or expired.")
        if grant.used:
            # RFC 6749 4.1.2: a code used twice may be stolen; revoke what the first use obtained.
            self._revoke_session(grant.sid)
            raise OAuthError("invalid_grant", "The authorization code was already used.")
        grant.used = True
        if grant.request.client_id != form["client_id"] or grant.request.redirect_uri != redirect_uri:
            raise OAuthError("invalid_grant", "The code was issued to another client or redirect_uri.")
        if not secrets.compare_digest(s256(verifier), grant.request.code_challenge):
            raise OAuthError("invalid_grant", "The code_verifier does not match the code_challenge.")
        request = grant.request
        return self._tokens(sub=grant.sub, roles=grant.roles, scope=request.scope, sid=grant.sid, nonce=request.nonce)

    def _refresh(self, form: dict[str, str]) -> dict[str, Any]:
        presented = form.get("refresh_token")
        if not presented:
            raise OAuthError("invalid_request", "refresh_token is required.")
        entry = self._store.refresh.get(_digest(presented))
        if entry is None or entry.expires_at <= self._clock() or entry.sid in self._store.revoked_sessions:
            raise OAuthError("invalid_grant", "The refresh token is unknown, expired or revoked.")
        if entry.rotated:
            # Rotation's point (RFC 9700 4.14.2): a replayed refresh token ends the whole session.
            self._revoke_session(entry.sid)
            raise OAuthError("invalid_grant", "The refresh token was already used; the session is revoked.")
        if entry.client_id != form["client_id"]:
            raise OAuthError("invalid_grant", "The refresh token was issued to another client.")
        if requested := form.get("scope"):
            if not set(requested.split()) <= set(entry.scope.split()):
                raise OAuthError("invalid_scope", "A refresh cannot widen the scope.")
        entry.rotated = True
        return self._tokens(sub=entry.sub, roles=entry.roles, scope=entry.scope, sid=entry.sid, nonce=None)

    def _tokens(self, *, sub: str, roles: tuple[str, ...], scope: str, sid: str, nonce: str | None) -> dict[str, Any]:
        access = self.issuer.issue(sub, roles, ttl=self.access_token_ttl, name=sub)
        id_claims: dict[str, Any] = {"sid": sid, "auth_time": int(self._clock())}
        if nonce is not None:
            id_claims["nonce"] = nonce
        id_token = self.issuer.issue(
            sub, roles, ttl=self.access_token_ttl, name=sub, extra_claims=id_claims, audience=self.client_id
        )
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_token_ttl,
            "id_token": id_token,
            "scope": scope,
        }
        if "offline_access" in scope.split():
            refresh = secrets.token_urlsafe(32)
            self._store.refresh[_digest(refresh)] = _Refresh(
                self.client_id, sub, roles, scope, sid, expires_at=self._clock() + self.refresh_token_ttl
            )
            body["refresh_token"] = refresh
        return body

    # --- end session ----------------------------------------------------------

    def end_session(self, params: dict[str, str], origin: str) -> str | None:
        """Revoke the session named by id_token_hint; the allow-listed URI to go back to, if any."""
        if hint := params.get("id_token_hint"):
            sid = self._sid_from_hint(hint)
            if sid is not None:
                self._revoke_session(sid)
        target = params.get("post_logout_redirect_uri")
        if not target:
            return None
        client_id = params.get("client_id")
        if client_id is not None and client_id != self.client_id:
            raise UnsafeRedirect("unauthorized_client", f"Unknown client_id {client_id!r}.")
        if not self._redirect_allowed(target, origin, self._logout_redirects):
            raise UnsafeRedirect("invalid_request", f"post_logout_redirect_uri {target!r} is not registered.")
        return target

    def _sid_from_hint(self, hint: str) -> str | None:
        try:  # an expired id token still names the session to end (OIDC RP-Initiated Logout 2)
            claims = jwt.decode(
                hint,
                key=self.issuer.public_key,
                algorithms=["RS256"],
                audience=self.client_id,
                issuer=self.issuer.issuer,
                options={"verify_exp": False},
            )
        except jwt.PyJWTError:
            return None
        sid = claims.get("sid")
        return sid if isinstance(sid, str) else None

    def _revoke_session(self, sid: str) -> None:
        self._store.revoked_sessions[sid] = self._clock() + self.refresh_token_ttl
        for key in [k for k, v in self._store.refresh.items() if v.sid == sid]:
            del self._store.refresh[key]

    def _purge(self) -> None:
        now = self._clock()
        store = self._store
        store.codes = {k: v for k, v in store.codes.items() if v.expires_at > now}
        store.refresh = {k: v for k, v in store.refresh.items() if v.expires_at > now}
        store.revoked_sessions = {k: v for k, v in store.revoked_sessions.items() if v > now}


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())
