"""Pure validators for trade identifiers and ISO code lists.

Each ``validate_*`` returns ``None`` for a valid value and raises :class:`InvalidIdentifier`
with a human-readable message otherwise. The ``*_check_*`` functions compute check
characters so that tests and fixtures can build valid values.
"""

from __future__ import annotations

import csv
import string
from functools import cache
from importlib.resources import files

DIGITS = "0123456789"  # explicit: str.isdigit() also accepts e.g. '²' or full-width digits
UPPER = string.ascii_uppercase
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, S, V, Z
# Registration authority codes: 1, 5, 9, Y from GB 32100-2015, and those assigned since
# (2 foreign affairs, 3 justice, 4 culture, 6 tourism, 7 religion, 8 trade unions,
# A military organisation offices, N agriculture).
USCC_AUTHORITIES = "123456789ANY"
CONTAINER_CATEGORIES = "UJZ"
UNLOCODE_ALPHABET = UPPER + "23456789"


class InvalidIdentifier(ValueError):
    """Raised when an identifier or code is malformed or fails its check."""


def _require(code: object, name: str, length: int, alphabet: str) -> str:
    if not isinstance(code, str):
        raise InvalidIdentifier(f"{name} must be a string, got {type(code).__name__}")
    if len(code) != length:
        raise InvalidIdentifier(f"{name} must be {length} characters long, got {len(code)}")
    for pos, char in enumerate(code, start=1):
        if char not in alphabet:
            raise InvalidIdentifier(f"{name} character {char!r} at position {pos} is not allowed")
    return code


@cache
def _codes(filename: str, column: str) -> frozenset[str]:
    text = files("singlewindow").joinpath("data", filename).read_text(encoding="utf-8")
    return frozenset(row[column] for row in csv.DictReader(text.splitlines()))


def uscc_check_char(first17: str) -> str:
    """Check character of a Unified Social Credit Code (GB 32100-2015, mod 31)."""
    body = _require(first17, "USCC body", 17, USCC_ALPHABET)
    total = sum(USCC_ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(body))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(code: str) -> None:
    """Validate an 18-character Unified Social Credit Code."""
    _require(code, "USCC", 18, USCC_ALPHABET)
    if code[0] not in USCC_AUTHORITIES:
        raise InvalidIdentifier(
            f"USCC registration authority code {code[0]!r} is not one of {USCC_AUTHORITIES}"
        )
    _require(code[2:8], "USCC administrative division code", 6, DIGITS)
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        raise InvalidIdentifier(f"USCC check character is {code[17]!r}, expected {expected!r}")


def _iso6346_value(char: str) -> int:
    if char in DIGITS:
        return int(char)
    value = 10 + UPPER.index(char)
    return value + (value - 1) // 10  # skip 11, 22, 33: A=10, B=12, ..., L=23, ..., V=34


def iso6346_check_digit(first10: str) -> int:
    """ISO 6346 check digit of owner code + category + 6-digit serial."""
    body = _require(first10, "container number body", 10, UPPER + DIGITS)
    _require(body[:3], "container owner code", 3, UPPER)
    _require(body[4:], "container serial number", 6, DIGITS)
    return sum(_iso6346_value(c) << i for i, c in enumerate(body)) % 11 % 10


def validate_container_number(code: str) -> None:
    """Validate an 11-character ISO 6346 container number such as ``CSQU3054383``."""
    _require(code, "container number", 11, UPPER + DIGITS)
    if code[3] not in CONTAINER_CATEGORIES:
        raise InvalidIdentifier(
            f"container equipment category {code[3]!r} is not one of {CONTAINER_CATEGORIES}"
        )
    _require(code[10], "container check digit", 1, DIGITS)
    expected = iso6346_check_digit(code[:10])
    if int(code[10]) != expected:
        raise InvalidIdentifier(f"container check digit is {code[10]}, expected {expected}")


def imo_check_digit(first6: str) -> int:
    """Check digit of an IMO ship number: weights 7..2, sum mod 10."""
    body = _require(first6, "IMO number body", 6, DIGITS)
    return sum(int(c) * w for c, w in zip(body, range(7, 1, -1), strict=True)) % 10


def validate_imo(code: str) -> None:
    """Validate a 7-digit IMO ship number (digits only, no ``IMO`` prefix)."""
    _require(code, "IMO number", 7, DIGITS)
    expected = imo_check_digit(code[:6])
    if int(code[6]) != expected:
        raise InvalidIdentifier(f"IMO number check digit is {code[6]}, expected {expected}")


def validate_country(code: str) -> None:
    """Validate an ISO 3166-1 alpha-2 country code against the shipped list."""
    _require(code, "country code", 2, UPPER)
    if code not in _codes("iso3166_countries.csv", "alpha_2"):
        raise InvalidIdentifier(f"country code {code!r} is not an ISO 3166-1 alpha-2 code")


def validate_currency(code: str) -> None:
    """Validate an ISO 4217 alphabetic currency code against the shipped list."""
    _require(code, "currency code", 3, UPPER)
    if code not in _codes("iso4217_currencies.csv", "alpha_3"):
        raise InvalidIdentifier(f"currency code {code!r} is not an ISO 4217 code")


def validate_unlocode(code: str) -> None:
    """Validate a 5-character UN/LOCODE such as ``CNSHA`` (country + 3-character location)."""
    _require(code, "UN/LOCODE", 5, UNLOCODE_ALPHABET)
    try:
        validate_country(code[:2])
    except InvalidIdentifier as exc:
        raise InvalidIdentifier(f"UN/LOCODE {code!r}: {exc}") from None


def validate_hs_code(code: str, digits: int = 10) -> None:
    """Validate an HS code of exactly ``digits`` digits with an existing chapter (01-97, not 77)."""
    if digits < 2:
        raise ValueError(f"digits must be at least 2, got {digits}")
    _require(code, "HS code", digits, DIGITS)
    chapter = int(code[:2])
    if not 1 <= chapter <= 97 or chapter == 77:
        raise InvalidIdentifier(f"HS chapter {code[:2]} does not exist (01-97, 77 is reserved)")
