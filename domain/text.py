"""What stored text may hold: a line (names, codes, tags, e-mails) or free text (notes,
remarks).

A line holds no control character and no line or paragraph separator: names reach mail
headers and log lines, where a line break starts another header or line. Free text may
run over lines (line feeds, carriage returns and tabs) but holds no other control
character. Neither holds a lone surrogate, which no database can store.
"""

import unicodedata

from domain.errors import ErrorCode, Problems

_NEVER = frozenset({"Cc", "Cs"})
_NOT_IN_A_LINE = _NEVER | {"Zl", "Zp"}
_FREE_TEXT_CONTROLS = frozenset("\t\n\r")


def refused_characters(text: str, *, free_text: bool = False) -> list[str]:
    """The characters `text` may not hold, each once, in the order they first appear."""
    refused = [
        char
        for char in text
        if unicodedata.category(char) in (_NEVER if free_text else _NOT_IN_A_LINE)
        and not (free_text and char in _FREE_TEXT_CONTROLS)
    ]
    return list(dict.fromkeys(refused))


def refusal(text: str, name: str, *, free_text: bool = False) -> str | None:
    """Why `text` may not be stored as `name`, or None if it may."""
    refused = refused_characters(text, free_text=free_text)
    if not refused:
        return None
    codes = ", ".join(f"U+{ord(char):04X}" for char in refused[:5])
    what = "control characters" if free_text else "control characters or line breaks"
    return f"{name} may not hold {what} ({codes})"


def check(problems: Problems, text: str | None, field: str, *, free_text: bool = False) -> None:
    """Report `text`, the input field `field`, if it holds what it may not."""
    message = None if text is None else refusal(text, field, free_text=free_text)
    if message is not None:
        problems.add(ErrorCode.VALIDATION, message, ["input", field])
