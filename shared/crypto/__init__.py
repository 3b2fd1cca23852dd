"""Envelope encryption for the few secrets the app stores (a contributor's tax id).

Each value is sealed with AES-256-GCM under a fresh data key; the data key is stored only wrapped by a
key-encryption key (KEK) that never leaves its home: locally a key file under VAR_DIR, on Azure a Key
Vault key used through managed identity. Rotating the KEK means re-wrapping data keys, never touching
the ciphertexts.
"""

from shared.crypto.envelope import (
    EnvelopeCipher,
    KeyVaultKeyWrapper,
    KeyWrapper,
    LocalKeyFileWrapper,
    Sealed,
    key_wrapper_from_settings,
)

__all__ = [
    "EnvelopeCipher",
    "KeyVaultKeyWrapper",
    "KeyWrapper",
    "LocalKeyFileWrapper",
    "Sealed",
    "key_wrapper_from_settings",
]
