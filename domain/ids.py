"""Opaque global ids ("Organization:<uuid>", base64): stable, and they reveal no row counts."""

import base64
import binascii
from uuid import UUID


def encode(type_name: str, key: UUID) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{key}".encode()).decode().rstrip("=")


def decode(global_id: str, expected_type: str | None = None) -> tuple[str, UUID] | None:
    """The (type, uuid) an id names, or None for anything that is not one of ours."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        type_name, _, raw = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        key = UUID(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if expected_type is not None and type_name != expected_type:
        return None
    return type_name, key
