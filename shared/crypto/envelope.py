"""The envelope cipher and its two key-encryption-key adapters (see the package docstring)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

from shared.config import Settings

DATA_KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's standard nonce; a fresh data key per value makes reuse impossible anyway


class KeyWrapper(Protocol):
    """Wraps and unwraps data keys with a key-encryption key it never reveals."""

    async def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """(the KEK's id, the wrapped data key)."""

    async def unwrap(self, kek_id: str, wrapped: bytes) -> bytes: ...


@dataclass(frozen=True)
class Sealed:
    ciphertext: bytes
    nonce: bytes
    wrapped_key: bytes
    kek_id: str


class EnvelopeCipher:
    def __init__(self, wrapper: KeyWrapper) -> None:
        self.wrapper = wrapper

    async def seal(self, plaintext: str, context: str) -> Sealed:
        """Encrypt under a new data key. `context` (e.g. the owner's id) is authenticated, not stored:
        a ciphertext copied to another row fails to open."""
        data_key = AESGCM.generate_key(bit_length=DATA_KEY_BYTES * 8)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(data_key).encrypt(nonce, plaintext.encode(), context.encode())
        kek_id, wrapped = await self.wrapper.wrap(data_key)
        return Sealed(ciphertext, nonce, wrapped, kek_id)

    async def open(self, sealed: Sealed, context: str) -> str:
        data_key = await self.wrapper.unwrap(sealed.kek_id, sealed.wrapped_key)
        return AESGCM(data_key).decrypt(sealed.nonce, sealed.ciphertext, context.encode()).decode()


class LocalKeyFileWrapper:
    """A 256-bit KEK in a file readable only by its owner, created on first use (AES key wrap, RFC 3394)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: bytes | None = None

    def _kek(self) -> bytes:
        if self._key is None:
            if not self.path.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(os.urandom(DATA_KEY_BYTES))
            self._key = self.path.read_bytes()
            if len(self._key) != DATA_KEY_BYTES:
                raise ValueError(f"{self.path} must hold exactly {DATA_KEY_BYTES} bytes")
        return self._key

    @property
    def kek_id(self) -> str:
        # Names the key without revealing it, so a ciphertext says which key file it needs.
        return "local:" + hashlib.sha256(self._kek()).hexdigest()[:16]

    async def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        return self.kek_id, aes_key_wrap(self._kek(), data_key)

    async def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        if kek_id != self.kek_id:
            raise ValueError(f"this value was sealed under key {kek_id}, not the local key file's {self.kek_id}")
        return aes_key_unwrap(self._kek(), wrapped)


class KeyVaultKeyWrapper:
    """A Key Vault RSA key (wrapKey/unwrapKey with RSA-OAEP-256) through the app's managed identity."""

    def __init__(self, key_id: str, credential: Any | None = None) -> None:
        self.key_id = key_id
        self._credential = credential

    def _client(self, key_id: str) -> Any:
        from azure.identity.aio import DefaultAzureCredential  # only on Azure
        from azure.keyvault.keys.crypto.aio import CryptographyClient

        if self._credential is None:
            # On Azure this resolves to the Function App's managed identity; no secret is configured.
            self._credential = DefaultAzureCredential()
        return CryptographyClient(key_id, self._credential)

    async def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        from azure.keyvault.keys.crypto import KeyWrapAlgorithm

        async with self._client(self.key_id) as client:
            result = await client.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, data_key)
        # The versioned key id, so unwrap finds the exact key version after a rotation.
        return result.key_id or self.key_id, result.encrypted_key

    async def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        from azure.keyvault.keys.crypto import KeyWrapAlgorithm

        async with self._client(kek_id) as client:
            result = await client.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped)
        return result.key


def key_wrapper_from_settings(settings: Settings) -> KeyWrapper:
    if settings.PAYOUT_TIN_KEY_ID:
        return KeyVaultKeyWrapper(settings.PAYOUT_TIN_KEY_ID)
    return LocalKeyFileWrapper(settings.VAR_DIR / "keys" / "payouts-tin.key")
