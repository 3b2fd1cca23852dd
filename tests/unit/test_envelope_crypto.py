"""Envelope encryption: a fresh data key per value, wrapped by a key-encryption key kept elsewhere."""

from __future__ import annotations

import stat

import pytest
from cryptography.exceptions import InvalidTag

from shared.config import load_settings
from shared.crypto import EnvelopeCipher, KeyVaultKeyWrapper, LocalKeyFileWrapper, key_wrapper_from_settings


async def test_a_sealed_value_opens_only_with_its_context(tmp_path):
    cipher = EnvelopeCipher(LocalKeyFileWrapper(tmp_path / "keys" / "kek"))
    sealed = await cipher.seal("123-45-6789", context="owner-1")

    assert b"6789" not in sealed.ciphertext and b"6789" not in sealed.wrapped_key
    assert await cipher.open(sealed, context="owner-1") == "123-45-6789"
    with pytest.raises(InvalidTag):
        await cipher.open(sealed, context="owner-2")  # copied to another contributor's row


async def test_every_value_gets_its_own_data_key(tmp_path):
    cipher = EnvelopeCipher(LocalKeyFileWrapper(tmp_path / "kek"))
    first, second = await cipher.seal("same", "c"), await cipher.seal("same", "c")
    assert first.wrapped_key != second.wrapped_key and first.ciphertext != second.ciphertext
    assert first.kek_id == second.kek_id and first.kek_id.startswith("local:")


async def test_the_local_key_file_is_created_once_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "keys" / "kek"
    sealed = await EnvelopeCipher(LocalKeyFileWrapper(path)).seal("secret", "c")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # A new process (a new wrapper) reads the same key and opens what the first sealed.
    assert await EnvelopeCipher(LocalKeyFileWrapper(path)).open(sealed, "c") == "secret"


async def test_a_value_sealed_under_another_key_is_refused_by_name(tmp_path):
    sealed = await EnvelopeCipher(LocalKeyFileWrapper(tmp_path / "a")).seal("secret", "c")
    with pytest.raises(ValueError, match="sealed under key local:"):
        await EnvelopeCipher(LocalKeyFileWrapper(tmp_path / "b")).open(sealed, "c")


def test_azure_uses_the_key_vault_key_and_local_runs_use_the_key_file(tmp_path):
    key_id = "https://vault.vault.azure.net/keys/payouts-tin/0123456789abcdef"
    on_azure = key_wrapper_from_settings(load_settings(VAR_DIR=tmp_path, PAYOUT_TIN_KEY_ID=key_id))
    assert isinstance(on_azure, KeyVaultKeyWrapper) and on_azure.key_id == key_id
    local = key_wrapper_from_settings(load_settings(VAR_DIR=tmp_path))
    assert isinstance(local, LocalKeyFileWrapper) and local.path == tmp_path / "keys" / "payouts-tin.key"


class _FakeVaultClient:
    """Key Vault's CryptographyClient for one RSA key held here: wrapKey/unwrapKey as the service does."""

    calls: list[tuple[str, str, str]] = []
    keys: dict[str, object] = {}

    def __init__(self, key_id, credential):
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.key_id, self.credential = key_id, credential
        base = key_id.rsplit("/", 1)[0] if key_id.count("/") > 4 else key_id
        self.private = self.keys.setdefault(base, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return None

    @staticmethod
    def _oaep():
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)

    async def wrap_key(self, algorithm, key):
        from types import SimpleNamespace

        self.calls.append(("wrap", self.key_id, algorithm.value))
        versioned = self.key_id if self.key_id.count("/") > 4 else self.key_id + "/v1"
        return SimpleNamespace(key_id=versioned, encrypted_key=self.private.public_key().encrypt(key, self._oaep()))

    async def unwrap_key(self, algorithm, encrypted_key):
        from types import SimpleNamespace

        self.calls.append(("unwrap", self.key_id, algorithm.value))
        return SimpleNamespace(key=self.private.decrypt(encrypted_key, self._oaep()))


async def test_the_key_vault_wrapper_wraps_with_rsa_oaep_256_and_unwraps_with_the_versioned_key(monkeypatch):
    import azure.keyvault.keys.crypto.aio as vault

    monkeypatch.setattr(vault, "CryptographyClient", _FakeVaultClient)
    key_id = "https://vault.vault.azure.net/keys/payouts-tin"
    cipher = EnvelopeCipher(KeyVaultKeyWrapper(key_id, credential=object()))

    sealed = await cipher.seal("287-65-4321", "owner-1")

    assert sealed.kek_id == key_id + "/v1"  # the exact key version, so a rotation keeps old values readable
    assert await cipher.open(sealed, "owner-1") == "287-65-4321"
    assert _FakeVaultClient.calls == [("wrap", key_id, "RSA-OAEP-256"), ("unwrap", key_id + "/v1", "RSA-OAEP-256")]
