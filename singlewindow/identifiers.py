"""Pure validators for trade identifiers and ISO code lists.

Each ``validate_*`` returns ``None`` for a valid value and raises :class:`InvalidIdentifier`
with a human-readable message otherwise. The ``*_check_*`` functions compute check
characters so that tests and fixtures can build valid values.
"""

from __future__ import annotations

import csv
import string
from decimal import Decimal, Inexact, localcontext
from functools import cache
from importlib.resources import files

DIGITS = "0123456789"  # explicit: str.isdigit() also accepts e.g. '²' or full-width digits
UPPER = string.ascii_uppercase
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, S, V, Z
# Registration authority codes: 1, 5, 9, Y from GB 32100-2015, and those assigned since
# (2 foreign affairs, 3 justice, 4 culture, 6 tourism, 7 religion, 8 trade unions,
# A military organisation offices, N agriculture).
USCC_AUTHORITIES = "123456789ANY"
# GB 11714-1997 organisation code (组织机构代码): 8 body characters, digits or A-Z (A=10..Z=35).
ORGANISATION_CODE_ALPHABET = DIGITS + UPPER
ORGANISATION_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
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


def organisation_code_check_char(first8: str) -> str:
    """Check character of a GB 11714-1997 organisation code (组织机构代码) body.

    Body characters are digits or upper-case letters valued A=10 ... Z=35; weights
    3, 7, 9, 10, 5, 8, 4, 2; check = 11 - (sum mod 11), written ``X`` for 10 and ``0`` for 11.
    """
    body = _require(first8, "organisation code body", 8, ORGANISATION_CODE_ALPHABET)
    total = sum(
        ORGANISATION_CODE_ALPHABET.index(c) * w
        for c, w in zip(body, ORGANISATION_CODE_WEIGHTS, strict=True)
    )
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def validate_uscc(code: str, *, organisation_code: bool = True) -> None:
    """Validate an 18-character Unified Social Credit Code (统一社会信用代码).

    Structure (GB 32100-2015): position 1 registration authority, 2 organisation kind,
    3-8 administrative division (GB/T 2260), 9-17 the organisation code (主体标识码, the
    GB 11714-1997 组织机构代码), 18 the check character (mod 31 over positions 1-17).

    With ``organisation_code`` (the default) the embedded organisation code must also carry
    its own GB 11714-1997 check character (position 17, see
    :func:`organisation_code_check_char`): a code whose GB 32100 check is right but whose
    embedded organisation code is impossible was never issued. The GB 32100 check is tested
    first, so a mistyped character is reported as such. Pass ``organisation_code=False`` to
    check only the GB 32100 form (reference-data loaders do, so released files that list
    such impossible codes still load; a profile keyed by one is never matched, because
    declarations are checked with the default).
    """
    _require(code, "USCC", 18, USCC_ALPHABET)
    if code[0] not in USCC_AUTHORITIES:
        raise InvalidIdentifier(
            f"USCC registration authority code {code[0]!r} is not one of {USCC_AUTHORITIES}"
        )
    _require(code[2:8], "USCC administrative division code", 6, DIGITS)
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        raise InvalidIdentifier(f"USCC check character is {code[17]!r}, expected {expected!r}")
    if organisation_code:
        org_expected = organisation_code_check_char(code[8:16])
        if code[16] != org_expected:
            raise InvalidIdentifier(
                f"USCC embedded organisation code {code[8:17]} has check character "
                f"{code[16]!r}, expected {org_expected!r} (GB 11714-1997)"
            )


def make_uscc(authority: str, kind: str, division: str, org_body8: str) -> str:
    """Build a valid USCC from its parts, computing both check characters (for fixtures)."""
    first17 = authority + kind + division + org_body8 + organisation_code_check_char(org_body8)
    code = first17 + uscc_check_char(first17)
    validate_uscc(code)
    return code


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
    if code[:6] == "000000":
        raise InvalidIdentifier("IMO number body 000000 is not a ship number")
    expected = imo_check_digit(code[:6])
    if int(code[6]) != expected:
        raise InvalidIdentifier(f"IMO number check digit is {code[6]}, expected {expected}")


def validate_country(code: str) -> None:
    """Validate an ISO 3166-1 alpha-2 country code against the shipped list."""
    _require(code, "country code", 2, UPPER)
    if code not in _codes("iso3166_countries.csv", "alpha_2"):
        raise InvalidIdentifier(f"country code {code!r} is not an ISO 3166-1 alpha-2 code")


# ISO 4217 codes that are not a currency a price can be invoiced in: they are refused although
# the shipped list (ISO 4217 as published) holds them. See singlewindow/data/README.md.
NON_INVOICE_CURRENCIES: dict[str, str] = {
    "XXX": "no currency involved",
    "XTS": "reserved for testing",
    "XAU": "gold, a precious metal",
    "XAG": "silver, a precious metal",
    "XPD": "palladium, a precious metal",
    "XPT": "platinum, a precious metal",
    "XBA": "a bond-market unit (EURCO)",
    "XBB": "a bond-market unit (E.M.U.-6)",
    "XBC": "a bond-market unit (E.U.A.-9)",
    "XBD": "a bond-market unit (E.U.A.-17)",
    "XSU": "the SUCRE, a unit of account between ALBA central banks",
    "XUA": "the ADB unit of account",
    "XAD": "the Arab Accounting Dinar, a unit of account of the Arab Monetary Fund",
    # The SDR is the IMF's unit of account: there are no SDR notes or accounts a buyer can pay
    # from, it appears in conventions (liability limits), not in invoices, and the customs
    # calculation rates publish no SDR rate.
    "XDR": "the IMF Special Drawing Right, a unit of account",
    # ISO 4217 "fund codes": units of account indexed to inflation or settlement variants
    # of a currency; a price is invoiced in the currency itself.
    "BOV": "a fund code (Bolivian Mvdol), invoice in BOB",
    "CHE": "a fund code (WIR Euro), invoice in EUR or CHF",
    "CHW": "a fund code (WIR Franc), invoice in CHF",
    "CLF": "a fund code (Unidad de Fomento), invoice in CLP",
    "COU": "a fund code (Unidad de Valor Real), invoice in COP",
    "MXV": "a fund code (Mexican UDI), invoice in MXN",
    "USN": "a fund code (US Dollar next day), invoice in USD",
    "UYI": "a fund code (Uruguay Peso en Unidades Indexadas), invoice in UYU",
    "UYW": "a fund code (Unidad Previsional), invoice in UYU",
}


def accepted_currencies() -> frozenset[str]:
    """The ISO 4217 codes :func:`validate_currency` accepts."""
    return _codes("iso4217_currencies.csv", "alpha_3") - NON_INVOICE_CURRENCIES.keys()


def validate_currency(code: str) -> None:
    """Validate an ISO 4217 alphabetic code of a currency a price can be invoiced in.

    Codes in the shipped ISO 4217 list that are not such a currency
    (:data:`NON_INVOICE_CURRENCIES`: no currency, testing, precious metals, bond-market
    units, units of account, fund codes) are refused.
    """
    _require(code, "currency code", 3, UPPER)
    if code not in _codes("iso4217_currencies.csv", "alpha_3"):
        raise InvalidIdentifier(f"currency code {code!r} is not an ISO 4217 code")
    if code in NON_INVOICE_CURRENCIES:
        raise InvalidIdentifier(
            f"currency code {code!r} is ISO 4217 but not a currency a price can be invoiced "
            f"in: {NON_INVOICE_CURRENCIES[code]}"
        )


def validate_unlocode(code: str) -> None:
    """Validate a 5-character UN/LOCODE such as ``CNSHA`` (country + 3-character location).

    The location ``ZZZ`` ("unknown location" / "other") is refused: it names no place.
    """
    _require(code, "UN/LOCODE", 5, UNLOCODE_ALPHABET)
    try:
        validate_country(code[:2])
    except InvalidIdentifier as exc:
        raise InvalidIdentifier(f"UN/LOCODE {code!r}: {exc}") from None
    if code[2:] == "ZZZ":
        raise InvalidIdentifier(f"UN/LOCODE {code!r}: location ZZZ names no place")


def validate_hs_code(code: str, digits: int = 10) -> None:
    """Validate an HS code of exactly ``digits`` digits with an existing chapter (01-97, not 77)."""
    if digits < 2:
        raise ValueError(f"digits must be at least 2, got {digits}")
    _require(code, "HS code", digits, DIGITS)
    chapter = int(code[:2])
    if not 1 <= chapter <= 97 or chapter == 77:
        raise InvalidIdentifier(f"HS chapter {code[:2]} does not exist (01-97, 77 is reserved)")


# --- Trade code lists (hand-maintained CSVs in singlewindow/data, see its README) ------------


@cache
def _table(filename: str) -> dict[str, dict[str, str]]:
    """Rows of a shipped CSV keyed by its first column."""
    text = files("singlewindow").joinpath("data", filename).read_text(encoding="utf-8")
    reader = csv.DictReader(text.splitlines())
    key = (reader.fieldnames or [""])[0]
    return {row[key]: row for row in reader}


def code_table(filename: str) -> list[dict[str, str]]:
    """The rows of a shipped code list (a CSV of ``singlewindow/data``), in its order: what
    a form's pickers offer, the very lists the validators check against."""
    return list(_table(filename).values())


def _in_list(code: str, name: str, length: int, alphabet: str, filename: str) -> str:
    code = _require(code, name, length, alphabet)
    if code not in _table(filename):
        raise InvalidIdentifier(f"{name} {code!r} is not in the shipped list ({filename})")
    return code


def validate_incoterm(code: str) -> None:
    """Validate an Incoterms 2020 rule code such as ``FOB`` (the 11 rules, upper case)."""
    _in_list(code, "Incoterms rule", 3, UPPER, "incoterms.csv")


def incoterm_includes(code: str) -> str:
    """What the price under ``code`` includes up to the place of importation:
    ``NONE``, ``FREIGHT`` or ``FREIGHT_INSURANCE``."""
    return _table("incoterms.csv")[_in_list(code, "Incoterms rule", 3, UPPER, "incoterms.csv")][
        "includes"
    ]


def validate_trade_mode(code: str) -> None:
    """Validate a 4-digit customs supervision mode (监管方式) such as ``0110`` 一般贸易."""
    _in_list(code, "trade mode", 4, DIGITS, "trade_modes.csv")


def trade_mode_needs_record(code: str) -> bool:
    """Whether a declaration under trade mode ``code`` must carry a record number (备案号)."""
    row = _table("trade_modes.csv")[_in_list(code, "trade mode", 4, DIGITS, "trade_modes.csv")]
    return row["record_required"] == "Y"


def validate_levy_nature(code: str) -> None:
    """Validate a 3-digit levy nature (征免性质) such as ``101`` 一般征税."""
    _in_list(code, "levy nature", 3, DIGITS, "levy_natures.csv")


def validate_customs_office(code: str) -> None:
    """Validate a 4-digit customs district or office code (关区代码) such as ``2200`` 上海海关."""
    _in_list(code, "customs office code", 4, DIGITS, "customs_offices.csv")


def validate_package_kind(code: str) -> None:
    """Validate a UN/ECE Recommendation 21 package type code such as ``CT`` (carton)."""
    _in_list(code, "package kind", 2, UPPER, "package_kinds.csv")


def is_bulk(code: str) -> bool:
    """Whether package kind ``code`` is bulk (the ``V*`` codes): no packages to count."""
    row = _table("package_kinds.csv")[_in_list(code, "package kind", 2, UPPER, "package_kinds.csv")]
    return row["bulk"] == "Y"


def validate_unit(code: str) -> None:
    """Validate a UN/ECE Recommendation 20 unit code accepted for statutory quantities."""
    if not isinstance(code, str):
        raise InvalidIdentifier(f"unit code must be a string, got {type(code).__name__}")
    if not 2 <= len(code) <= 3:
        raise InvalidIdentifier(f"unit code must be 2 or 3 characters long, got {len(code)}")
    _require(code, "unit code", len(code), UPPER + DIGITS)
    if code not in _table("rec20_units.csv"):
        raise InvalidIdentifier(f"unit code {code!r} is not in the shipped list (rec20_units.csv)")


def convert(quantity: Decimal, from_unit: str, to_unit: str) -> Decimal | None:
    """``quantity`` in ``from_unit`` expressed in ``to_unit``, exactly; ``None`` when the two
    units measure different dimensions (e.g. mass and volume: no density is assumed)."""
    validate_unit(from_unit)
    validate_unit(to_unit)
    source, target = _table("rec20_units.csv")[from_unit], _table("rec20_units.csv")[to_unit]
    if source["dimension"] != target["dimension"]:
        return None
    with localcontext() as ctx:
        ctx.prec = 60
        ctx.traps[Inexact] = True  # factors are powers of ten: the result is always exact
        return quantity * Decimal(source["factor"]) / Decimal(target["factor"])


# GB/T 2260 province-level codes (the first two digits of an administrative division code),
# including 71 Taiwan, 81 Hong Kong and 82 Macao.
PROVINCE_CODES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)


def validate_enterprise_customs_code(code: str) -> None:
    """Validate the form of a 10-character enterprise customs registration code (海关编码).

    Structure checked: positions 1-4 the administrative division of the place of
    registration (GB/T 2260 province + city, e.g. ``4403`` Shenzhen; the province part must
    exist), 5 the economic-zone type (a digit), 6 the enterprise's economic type (a digit or
    an upper-case letter), 7-10 a sequence number (digits or upper-case letters). There is no
    check character, so this is a form check only: it cannot tell whether the code was issued.
    """
    _require(code, "enterprise customs code", 10, DIGITS + UPPER)
    _require(code[:5], "enterprise customs code area and zone type", 5, DIGITS)
    if code[:2] not in PROVINCE_CODES:
        raise InvalidIdentifier(
            f"enterprise customs code {code!r}: {code[:2]} is not a GB/T 2260 province code"
        )


# First letters of a record number (备案号) as used on the customs declaration: B 来料加工手册,
# C 进料加工手册, D 不作价设备手册, E 加工贸易电子账册, H 特殊监管区域电子账册, Z 征免税证明;
# less sure: F 异地报关分册, L 保税物流账册, T 保税仓库账册, Y 原产地证书.
RECORD_NUMBER_KINDS = "BCDEFHLTYZ"


def validate_record_number(code: str) -> None:
    """Validate the form of a 12-character record number (备案号) such as ``C22017500001``:
    a kind letter (:data:`RECORD_NUMBER_KINDS`) then 11 digits or upper-case letters.
    Form only: there is no check character."""
    _require(code, "record number", 12, DIGITS + UPPER)
    if code[0] not in RECORD_NUMBER_KINDS:
        raise InvalidIdentifier(
            f"record number kind {code[0]!r} is not one of {RECORD_NUMBER_KINDS}"
        )


def validate_un_number(code: str) -> None:
    """Validate a UN number of dangerous goods such as ``UN1203``: ``UN`` and 4 digits in
    0004-3599 (the UN Model Regulations' list starts at 0004; 3599 bounds the numbers in use
    with room for the next editions)."""
    _require(code, "UN number", 6, UPPER + DIGITS)
    if code[:2] != "UN":
        raise InvalidIdentifier(f"UN number {code!r} must start with 'UN'")
    _require(code[2:], "UN number digits", 4, DIGITS)
    if not 4 <= int(code[2:]) <= 3599:
        raise InvalidIdentifier(f"UN number {code!r} is outside UN0004-UN3599")
