"""Parsing and fingerprinting OpenSSH public keys."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct

KEY_TYPES = frozenset(
    {
        "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)  # fmt: skip


BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
B64 = "[A-Za-z0-9+/]"
MINIMUM_BYTES = {"ssh-ed25519": 51, "ssh-rsa": 200}


def _encoded_prefix(key_type: str) -> str:
    """A regex for the base64 of a key blob's first bytes, its length-prefixed type.

    The type's last bytes share base64 characters with the key data that follows, so
    those characters are a class: every character whose known bits agree.
    """
    header = struct.pack(">I", len(key_type)) + key_type.encode()
    bits = "".join(f"{byte:08b}" for byte in header)
    pattern = ""
    for start in range(0, len(bits), 6):
        known = bits[start : start + 6]
        matching = [c for i, c in enumerate(BASE64) if f"{i:06b}".startswith(known)]
        pattern += matching[0] if len(matching) == 1 else f"[{re.escape(''.join(matching))}]"
    return pattern


def _key_pattern(key_type: str) -> str:
    prefix = _encoded_prefix(key_type)
    covered = len(re.sub(r"\[[^]]*\]", "c", prefix))
    groups = -(-MINIMUM_BYTES.get(key_type, 40) // 3)  # 4-character groups of the minimum
    return (
        rf"{re.escape(key_type)} {prefix}{B64}{{{-covered % 4}}}"
        rf"(?:{B64}{{4}}){{{max(groups - -(-covered // 4), 0)},}}(?:{B64}{{2}}==|{B64}{{3}}=)?"
    )


PUBLIC_KEY_PATTERN = (
    rf"^(?:{'|'.join(_key_pattern(t) for t in sorted(KEY_TYPES))})(?: [^\x00-\x1f\x7f-\x9f]*)?$"
)
"""What ``parse_public_key`` accepts, as far as a regex can say: the OpenAPI document's pattern."""


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
    minimum = MINIMUM_BYTES.get(key_type, 40)
    if len(blob) < minimum:
        raise ValueError("The key data is too short to be a real key.")
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    normalized = " ".join(parts)
    return normalized, f"SHA256:{digest}"
