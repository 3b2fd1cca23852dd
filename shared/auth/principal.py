"""Who is calling: the identity and roles taken from a validated bearer token."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

Role = Literal["buyer", "contributor", "admin"]
KNOWN_ROLES: frozenset[str] = frozenset(get_args(Role))


def roles_from_claim(value: object) -> frozenset[str]:
    """The known roles in a `roles` claim (Entra app roles).

    Unknown strings are dropped rather than rejected: a tenant may define app
    roles this service does not use, and they must grant nothing here.
    """
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return frozenset()
    return frozenset(role for role in value if isinstance(role, str) and role in KNOWN_ROLES)


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    roles: frozenset[str] = frozenset()
    name: str | None = None
    email: str | None = None
    # The full verified claim set, read-only: handlers may need e.g. `oid` or `tid`.
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.sub:
            raise ValueError("a principal needs a non-empty sub")
        object.__setattr__(self, "roles", frozenset(self.roles) & KNOWN_ROLES)
        object.__setattr__(self, "claims", MappingProxyType(dict(self.claims)))

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        def text(key: str) -> str | None:
            value = claims.get(key)
            return value if isinstance(value, str) and value else None

        return cls(
            sub=str(claims["sub"]),
            roles=roles_from_claim(claims.get("roles")),
            name=text("name"),
            # Display only: Entra lets users edit these, so never key anything on them (use `sub`).
            email=text("email"),
            claims=claims,
        )

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def has_any_role(self, roles: Iterable[str]) -> bool:
        return not self.roles.isdisjoint(roles)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles
