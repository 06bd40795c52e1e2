"""What a GraphQL request's JSON (a POST body, a GET's `variables`) may hold.

No operation needs more than UTF-8 text, nesting a few levels deep, integers of a few
digits and strings of characters. Anything else is refused with a 400 before it reaches
the parser, the validator or a resolver, where it would raise deep inside them
(RecursionError, Python's limit on integer conversion, a lone surrogate no database can
store).
"""

import json
from collections.abc import Iterator
from typing import Any

from cross_web import HTTPException

# Levels of arrays and objects; an operation's variables use three or four.
MAX_NESTING = 64
# Digits of an integer: GraphQL's Int has 32 bits.
MAX_DIGITS = 100


class _Refused(ValueError):
    pass


def decode(data: str | bytes) -> object:
    """The JSON `data` holds, if a GraphQL request may hold it; else HTTPException(400).

    Malformed JSON raises json.JSONDecodeError, which strawberry answers with a 400."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as error:
        byte = error.object[error.start : error.start + 1].hex()
        raise HTTPException(
            400, f"The body is not UTF-8: byte 0x{byte} at {error.start}."
        ) from None
    try:
        value = json.loads(text, parse_int=_integer)
    except RecursionError:
        raise HTTPException(400, _too_deep()) from None
    except _Refused as refused:
        raise HTTPException(400, str(refused)) from None
    problem = _problem(value)
    if problem is not None:
        raise HTTPException(400, problem)
    return value


def _integer(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_DIGITS:
        raise _Refused(f"The body holds an integer of {digits} digits; at most {MAX_DIGITS}.")
    return int(text)


def _too_deep() -> str:
    return f"The body is nested too deeply: at most {MAX_NESTING} levels of arrays and objects."


def _problem(value: object) -> str | None:
    """What the decoded JSON holds that no operation may: too deep, or not text."""
    for text, depth in _walk(value):
        if depth > MAX_NESTING:
            return _too_deep()
        if text is not None and not _is_text(text):
            return "The body holds a lone surrogate (an escape such as \\ud83d): not text."
    return None


def _walk(value: object) -> Iterator[tuple[str | None, int]]:
    """Every string (keys too) with its depth, and every array or object as (None, depth):
    without recursion, however deep."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            yield item, depth
        elif isinstance(item, dict):
            yield None, depth + 1
            for key, member in item.items():
                yield key, depth + 1
                stack.append((member, depth + 1))
        elif isinstance(item, list):
            yield None, depth + 1
            stack.extend((member, depth + 1) for member in item)


def _is_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
