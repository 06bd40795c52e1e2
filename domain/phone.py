"""Phone numbers in, E.164 out: any common notation is accepted and normalised."""

import re

import phonenumbers

_SEPARATORS = re.compile(r"[\s\-.()/]")


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


def _international(raw: str) -> str:
    compact = _SEPARATORS.sub("", raw.strip())
    if compact.startswith("00"):
        return "+" + compact[2:]
    return compact if compact.startswith("+") else "+" + compact


def normalise(raw: str) -> str | None:
    """E.164 for a number named in any notation ("6531234567", "+65 3123 4567"), or None."""
    parsed = _parse(_international(raw), None)
    if parsed is None:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_for_country(raw: str, country: str) -> str | None:
    """E.164 for a valid number of `country`, in national or international notation."""
    for candidate in (_parse(raw, country), _parse(_international(raw), None)):
        if candidate is not None and phonenumbers.is_valid_number_for_region(candidate, country):
            return phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.E164)
    return None


def is_country(code: str) -> bool:
    return code in phonenumbers.SUPPORTED_REGIONS


def normalise_valid(raw: str) -> str | None:
    """E.164 for a valid number of any country, or None."""
    parsed = _parse(_international(raw), None)
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
