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
