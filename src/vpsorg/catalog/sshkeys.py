"""Parsing and fingerprinting OpenSSH public keys."""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct

KEY_TYPES = frozenset(
    {
        "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)  # fmt: skip


def parse_public_key(text: str) -> tuple[str, str]:
    """Validate an OpenSSH public key line; return (normalized key, SHA256 fingerprint).

    Raises ValueError with a message fit for the user when the key is not valid.
    """
    parts = text.strip().split()
    if len(parts) < 2:
        raise ValueError("Expected an OpenSSH public key such as 'ssh-ed25519 AAAA... comment'.")
    key_type, encoded = parts[0], parts[1]
    if key_type not in KEY_TYPES:
        raise ValueError(f"Unsupported key type '{key_type[:40]}'.")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("The key data is not valid base64.") from None
    if len(blob) < 4:
        raise ValueError("The key data is truncated.")
    (length,) = struct.unpack(">I", blob[:4])
    if blob[4 : 4 + length].decode(errors="replace") != key_type:
        raise ValueError(f"The key data does not match its type '{key_type}'.")
    minimum = {"ssh-ed25519": 51, "ssh-rsa": 200}.get(key_type, 40)
    if len(blob) < minimum:
        raise ValueError("The key data is too short to be a real key.")
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    normalized = " ".join(parts)
    return normalized, f"SHA256:{digest}"
