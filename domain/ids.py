"""Opaque global ids ("Organization:<uuid>", base64): stable, and they reveal no row counts."""

import base64
import binascii
from uuid import UUID


def encode(type_name: str, key: UUID | str) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{key}".encode()).decode().rstrip("=")


def decode(global_id: str, expected_type: str | None = None) -> tuple[str, str] | None:
    """The (type, key) an id names, or None for anything that is not one of ours."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    type_name, sep, key = text.partition(":")
    if not sep or not key or (expected_type is not None and type_name != expected_type):
        return None
    return type_name, key


def decode_uuid(global_id: str, expected_type: str) -> UUID | None:
    decoded = decode(global_id, expected_type)
    if decoded is None:
        return None
    try:
        return UUID(decoded[1])
    except ValueError:
        return None


def uuid_named(text: str, type_name: str) -> UUID | None:
    """The UUID `text` names: a global id of `type_name`, or the bare UUID itself.

    None if it is neither (an id of another type, or not an id at all): a caller that
    takes either form reports that as bad input, never as "not found".
    """
    key = decode_uuid(text, type_name)
    if key is not None:
        return key
    try:
        return UUID(text.strip())
    except ValueError:
        return None
