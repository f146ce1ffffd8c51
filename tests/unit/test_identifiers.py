"""Tests for singlewindow.identifiers: real examples plus check-scheme properties."""

from __future__ import annotations

import string
import subprocess
import sys
from collections.abc import Callable

import pycountry
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from singlewindow.identifiers import (
    NON_INVOICE_CURRENCIES,
    USCC_AUTHORITIES,
    InvalidIdentifier,
    imo_check_digit,
    iso6346_check_digit,
    make_uscc,
    organisation_code_check_char,
    uscc_check_char,
    validate_container_number,
    validate_country,
    validate_currency,
    validate_hs_code,
    validate_imo,
    validate_unlocode,
    validate_uscc,
)

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# Weights as tabulated in GB 32100-2015 (3^(i-1) mod 31), written out independently.
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
# ISO 6346 letter values as tabulated in the standard (multiples of 11 skipped).
ISO6346_LETTERS = dict(zip(string.ascii_uppercase, [
    10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24,
    25, 26, 27, 28, 29, 30, 31, 32, 34, 35, 36, 37, 38,
], strict=True))  # fmt: skip
IMO_WEIGHTS = [7, 6, 5, 4, 3, 2, 1]  # last entry: the check digit itself
DIGITS = "0123456789"
FULLWIDTH = {ord(d): 0xFF10 + int(d) for d in DIGITS}  # "9" -> U+FF19; isdigit() is True


def chars(alphabet: str, n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=n, max_size=n)


# Weights of the GB 11714-1997 organisation code, as tabulated in the standard.
ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]
ORG_VALUES = {c: i for i, c in enumerate(DIGITS + string.ascii_uppercase)}


def org_check(body8: str) -> str:
    check = 11 - sum(ORG_VALUES[c] * w for c, w in zip(body8, ORG_WEIGHTS, strict=True)) % 11
    return {10: "X", 11: "0"}.get(check, str(check))


uscc_bodies = st.builds(
    lambda head, org8: head + org8 + org_check(org8),
    st.builds(
        "".join,
        st.tuples(st.sampled_from(USCC_AUTHORITIES), chars(USCC_ALPHABET, 1), chars(DIGITS, 6)),
    ),
    chars(USCC_ALPHABET, 8),
)
container_bodies = st.builds(
    "".join,
    st.tuples(chars(string.ascii_uppercase, 3), st.sampled_from("UJZ"), chars(DIGITS, 6)),
)
imo_bodies = chars(DIGITS, 6)


def iso6346_residue(body: str) -> int:
    values = [ISO6346_LETTERS.get(c) or int(c) for c in body]
    return sum(v * (1 << i) for i, v in enumerate(values)) % 11


def substitute(code: str, pos: int, char: str) -> str:
    return code[:pos] + char + code[pos + 1 :]


# --- Unified Social Credit Code -------------------------------------------------------------

REAL_USCCS = [
    "91350100M000100Y43",
    "914403001922038216",  # Huawei Technologies Co., Ltd.
    "9144030071526726XG",  # Shenzhen Tencent Computer Systems Co., Ltd.
    "91330100716105852F",  # Alibaba (China) Co., Ltd.
    "12100000400010398P",  # a public institution (authority 1)
]


@pytest.mark.parametrize("code", REAL_USCCS)
def test_real_uscc_validates(code: str) -> None:
    validate_uscc(code)
    assert uscc_check_char(code[:17]) == code[17]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("91350100M000100Y4", "18 characters long, got 17"),
        ("91350100M000100Y433", "18 characters long, got 19"),
        ("91350100M0001O0Y43", "'O' at position 14 is not allowed"),
        ("91350100m000100Y43", "'m' at position 9 is not allowed"),
        ("01350100M000100Y43", "registration authority code '0'"),
        ("9135010AM000100Y43", "administrative division code character 'A' at position 6"),
        ("91350100M000100Y44", "check character is '4', expected '3'"),
        ("91350100M000101Y43", "check character is '3', expected"),
        # GB 32100 check right, embedded organisation code M000100Y5 impossible (expected 4)
        ("91350100M000100Y5" + uscc_check_char("91350100M000100Y5"), "organisation code"),
        ("91310115UKRECL7CL1", "UKRECL7CL has check character 'L', expected '9'"),
    ],
)
def test_invalid_uscc_is_rejected_with_reason(code: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=message):
        validate_uscc(code)


@pytest.mark.parametrize("code", REAL_USCCS)
def test_real_uscc_embeds_a_valid_organisation_code(code: str) -> None:
    assert organisation_code_check_char(code[8:16]) == org_check(code[8:16]) == code[16]


@pytest.mark.parametrize(
    ("body", "check"),
    [("19220382", "1"), ("M000100Y", "4"), ("71526726", "X"), ("00000000", "0")],
)
def test_organisation_code_check_char_maps_10_to_x_and_11_to_0(body: str, check: str) -> None:
    assert organisation_code_check_char(body) == check


def test_impossible_organisation_code_passes_the_form_only_check() -> None:
    code = "91310115UKRECL7CL1"  # as listed in the released ciq-2026.11 and customs-2026.11
    validate_uscc(code, organisation_code=False)
    with pytest.raises(InvalidIdentifier, match="GB 11714"):
        validate_uscc(code)


def test_make_uscc_builds_both_check_characters() -> None:
    assert make_uscc("9", "1", "310115", "UKRECL7C") == "91310115UKRECL7C9Y"
    assert make_uscc("9", "1", "440300", "19220382") == "914403001922038216"


@given(uscc_bodies)
def test_uscc_check_char_matches_weights_tabulated_in_standard(body: str) -> None:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(body, USCC_WEIGHTS, strict=True))
    assert uscc_check_char(body) == USCC_ALPHABET[(31 - total % 31) % 31]
    validate_uscc(body + uscc_check_char(body))


@given(uscc_bodies, st.integers(0, 17), st.sampled_from(USCC_ALPHABET))
def test_uscc_detects_every_single_substitution(body: str, pos: int, char: str) -> None:
    code = body + uscc_check_char(body)
    assume(code[pos] != char)
    with pytest.raises(InvalidIdentifier):
        validate_uscc(substitute(code, pos, char))


# --- ISO 6346 container numbers -------------------------------------------------------------


@pytest.mark.parametrize("code", ["CSQU3054383", "MSKU9070323"])
def test_real_container_number_validates(code: str) -> None:
    validate_container_number(code)
    assert iso6346_check_digit(code[:10]) == int(code[10])


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("CSQU305438", "11 characters long, got 10"),
        ("CSQU3054384", "check digit is 4, expected 3"),
        ("CSQX3054383", "equipment category 'X'"),
        ("C5QU3054383", "owner code character '5'"),
        ("CSQU30543A3", "serial number character 'A'"),
        ("csqu3054383", "'c' at position 1"),
        ("CSQU 054383", "' ' at position 5"),
    ],
)
def test_invalid_container_number_is_rejected_with_reason(code: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=message):
        validate_container_number(code)


def test_container_owner_letters_congruent_mod_11_are_not_distinguished() -> None:
    # Known ISO 6346 weakness: C=13, M=24, W=35 are all 2 mod 11.
    validate_container_number("MSQU3054383")
    validate_container_number("WSQU3054383")


@given(container_bodies)
def test_container_check_digit_matches_tabulated_letter_values(body: str) -> None:
    assert iso6346_check_digit(body) == iso6346_residue(body) % 10
    validate_container_number(body + str(iso6346_check_digit(body)))


@given(container_bodies, st.integers(3, 10), st.data())
def test_container_detects_category_serial_and_check_substitutions(
    body: str, pos: int, data: st.DataObject
) -> None:
    # Residues 0 and 10 both give check digit 0, so exclude them (ISO 6346 weakness).
    assume(iso6346_residue(body) not in (0, 10))
    code = body + str(iso6346_check_digit(body))
    char = data.draw(
        st.sampled_from("UJZ" if pos == 3 else DIGITS).filter(lambda c: c != code[pos])
    )
    with pytest.raises(InvalidIdentifier):
        validate_container_number(substitute(code, pos, char))


@given(container_bodies, st.integers(0, 2), st.sampled_from(string.ascii_uppercase))
def test_container_detects_owner_substitution_iff_not_congruent_mod_11(
    body: str, pos: int, char: str
) -> None:
    assume(iso6346_residue(body) not in (0, 10) and body[pos] != char)
    altered = substitute(body + str(iso6346_check_digit(body)), pos, char)
    if (ISO6346_LETTERS[char] - ISO6346_LETTERS[body[pos]]) % 11 == 0:
        validate_container_number(altered)
    else:
        with pytest.raises(InvalidIdentifier, match="check digit"):
            validate_container_number(altered)


# --- IMO ship numbers -----------------------------------------------------------------------


@pytest.mark.parametrize("code", ["9074729", "9176187"])
def test_real_imo_number_validates(code: str) -> None:
    validate_imo(code)
    assert imo_check_digit(code[:6]) == int(code[6])


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("9074728", "check digit is 8, expected 9"),
        ("IMO 9074729", "7 characters long, got 11"),
        ("907472", "7 characters long, got 6"),
        ("907472X", "'X' at position 7"),
        ("0000000", "000000 is not a ship number"),
        ("9074729".translate(FULLWIDTH), "position 1 is not allowed"),
    ],
)
def test_invalid_imo_is_rejected_with_reason(code: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=message):
        validate_imo(code)


def test_non_string_is_rejected() -> None:
    with pytest.raises(InvalidIdentifier, match="must be a string, got int"):
        validate_imo(9074729)  # type: ignore[arg-type]


@given(imo_bodies, st.integers(0, 6), st.sampled_from(DIGITS))
def test_imo_detects_substitution_iff_weighted_change_nonzero_mod_10(
    body: str, pos: int, char: str
) -> None:
    code = body + str(imo_check_digit(body))
    assume(code[pos] != char)
    altered = substitute(code, pos, char)
    if (int(char) - int(code[pos])) * IMO_WEIGHTS[pos] % 10 == 0:
        validate_imo(altered)  # e.g. +-5 at weight 2/4/6, or an even change at weight 5
    else:
        with pytest.raises(InvalidIdentifier):
            validate_imo(altered)


@given(imo_bodies, st.sampled_from([0, 4, 6]), st.sampled_from(DIGITS))
def test_imo_always_detects_substitution_at_weights_coprime_to_10(
    body: str, pos: int, char: str
) -> None:
    code = body + str(imo_check_digit(body))
    assume(code[pos] != char)
    with pytest.raises(InvalidIdentifier):
        validate_imo(substitute(code, pos, char))


# --- Code lists -----------------------------------------------------------------------------


def test_shipped_lists_match_pycountry_exactly() -> None:
    for code in (c.alpha_2 for c in pycountry.countries):
        validate_country(code)
    for code in (c.alpha_3 for c in pycountry.currencies):
        if code in NON_INVOICE_CURRENCIES:
            with pytest.raises(InvalidIdentifier, match="not a currency a price can be invoiced"):
                validate_currency(code)
        else:
            validate_currency(code)
    assert len(pycountry.countries) == 249  # complete list, not a sample
    assert NON_INVOICE_CURRENCIES.keys() <= {c.alpha_3 for c in pycountry.currencies}


@given(chars(string.ascii_uppercase, 2))
def test_country_valid_iff_in_iso_3166(code: str) -> None:
    if pycountry.countries.get(alpha_2=code) is None:
        with pytest.raises(InvalidIdentifier, match="not an ISO 3166-1"):
            validate_country(code)
    else:
        validate_country(code)


@given(chars(string.ascii_uppercase, 3))
def test_currency_valid_iff_in_iso_4217(code: str) -> None:
    if pycountry.currencies.get(alpha_3=code) is None:
        with pytest.raises(InvalidIdentifier, match="not an ISO 4217"):
            validate_currency(code)
    elif code in NON_INVOICE_CURRENCIES:
        with pytest.raises(InvalidIdentifier, match="not a currency"):
            validate_currency(code)
    else:
        validate_currency(code)


@pytest.mark.parametrize(
    ("validator", "code", "message"),
    [
        (validate_country, "UK", "'UK' is not an ISO 3166-1"),
        (validate_country, "cn", "'c' at position 1"),
        (validate_country, "CHN", "2 characters long, got 3"),
        (validate_currency, "RMB", "'RMB' is not an ISO 4217"),
        (validate_currency, "usd", "'u' at position 1"),
        (validate_currency, "EUR ", "3 characters long, got 4"),
    ],
)
def test_bad_country_and_currency_codes(
    validator: Callable[[str], None], code: str, message: str
) -> None:
    with pytest.raises(InvalidIdentifier, match=message):
        validator(code)


def test_runtime_reads_csv_not_pycountry() -> None:
    script = (
        "import sys; import singlewindow.identifiers as m; m.validate_country('CN'); "
        "m.validate_currency('CNY'); assert 'pycountry' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


# --- UN/LOCODE and HS codes -----------------------------------------------------------------


@pytest.mark.parametrize("code", ["CNSHA", "NLRTM", "USLAX", "DEHAM", "SGSIN", "CNSZX"])
def test_real_unlocode_validates(code: str) -> None:
    validate_unlocode(code)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("XXSHA", "'XX' is not an ISO 3166-1"),
        ("CNSH1", "'1' at position 5"),
        ("CNSH0", "'0' at position 5"),
        ("CN SHA", "5 characters long, got 6"),
        ("cnsha", "'c' at position 1"),
        ("CNZZZ", "ZZZ names no place"),
    ],
)
def test_invalid_unlocode_is_rejected_with_reason(code: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=message):
        validate_unlocode(code)


@given(
    st.sampled_from(sorted(c.alpha_2 for c in pycountry.countries)),
    chars(string.ascii_uppercase + "23456789", 3),
)
def test_unlocode_accepts_any_country_with_location_part(country: str, location: str) -> None:
    assume(location != "ZZZ")
    validate_unlocode(country + location)


@pytest.mark.parametrize(
    ("code", "digits"), [("8471300000", 10), ("847130", 6), ("0101210010", 10), ("97019100", 8)]
)
def test_real_hs_code_validates(code: str, digits: int) -> None:
    validate_hs_code(code, digits)


@pytest.mark.parametrize(
    ("code", "digits", "message"),
    [
        ("7700000000", 10, "chapter 77 does not exist"),
        ("0012345678", 10, "chapter 00 does not exist"),
        ("9812345678", 10, "chapter 98 does not exist"),
        ("847130", 10, "10 characters long, got 6"),
        ("8471300000", 6, "6 characters long, got 10"),
        ("84713000A0", 10, "'A' at position 9"),
        ("8471.30", 6, "6 characters long, got 7"),
        ("8471.3", 6, "'.' at position 5"),
    ],
)
def test_invalid_hs_code_is_rejected_with_reason(code: str, digits: int, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=message):
        validate_hs_code(code, digits)


@given(chars(DIGITS, 10))
def test_hs_code_valid_iff_chapter_exists(code: str) -> None:
    if int(code[:2]) in set(range(1, 98)) - {77}:
        validate_hs_code(code)
    else:
        with pytest.raises(InvalidIdentifier, match="chapter"):
            validate_hs_code(code)


@pytest.mark.parametrize(
    ("func", "body"),
    [(uscc_check_char, "9135010"), (iso6346_check_digit, "CSQU30543"), (imo_check_digit, "90747A")],
)
def test_check_functions_reject_malformed_bodies(func: Callable[[str], object], body: str) -> None:
    with pytest.raises(InvalidIdentifier):
        func(body)
