"""Build ``customs-2026.11-r2/tariff.csv`` from the source extracts and the curated overrides.

Deterministic: the same inputs give the same bytes. Run from the repository root::

    python services/customs/reference/build_tariff.py

Inputs (all in ``services/customs/reference/``):

* ``sources/hs2022_subheadings.csv`` -- HS 2022 six-digit subheadings with English
  descriptions (datasets/harmonized-system, ODC-PDDL). The backbone: one line per
  subheading of the covered chapters, coded ``HS6 + "0000"``.
* ``sources/cn_tariff_2026_extract.csv`` -- eight-digit Chinese tariff lines with their
  MFN and provisional rates, transcribed from a text extract of the 2026 tariff book.
  An HS6 with national lines here is replaced by those lines (``code8 + "00"``).
* ``derived_rates.csv`` -- DERIVED (not official) MFN/general rates, units and VAT by
  code prefix (longest prefix wins), used for every cell the other inputs leave open.
* ``tariff_overrides.csv`` -- curated lines, each with its ``source``; they win. A
  curated ten-digit code that splits an HS6 or an eight-digit line removes the parent.

Outputs: ``customs-2026.11-r2/tariff.csv`` (the exact published format) and
``customs-2026.11-r2/tariff_sources.csv`` (``hs_code,source``: where each line comes from).
"""

from __future__ import annotations

import csv
from pathlib import Path

from services.customs.reference import COLUMNS

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "customs-2026.11-r2"

HEADER = list(COLUMNS)  # the loader's columns, in order

# Chapters every HS6 subheading of which is carried (the coverage of this version).
CHAPTERS = [f"{c:02d}" for c in range(1, 25)] + [
    "27",
    "28",
    "29",
    "39",
    "44",
    "61",
    "62",
    "63",
    "64",
    "84",
    "85",
    "87",
    "90",
]

# Measures by code prefix for backbone lines (curated lines set their own cells).
PROHIBITED_PREFIXES = {
    "3915": "I",  # plastic waste and scrap: solid-waste import ban
    "4707": "I",  # recovered paper: solid-waste import ban
    "6309": "I",  # worn clothing: import only, export is legal
    "050710": "IE",  # ivory
}
LICENCE_PREFIXES = {
    "0401": "AIL",
    "0402": "AIL",
    "2709": "AIL",
    "8703": "AIL",
    "2402": "AIL",
    "2403": "AIL",
}
# Motor fuels: first unit KGM, second LTR (the consumption tax is per litre).
FUEL_PREFIXES = ("271012", "271019")


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _longest(prefixes: dict[str, dict[str, str]] | dict[str, str], code: str) -> str | None:
    best = None
    for prefix in prefixes:
        if code.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return best


def _pct(raw: str) -> str:
    raw = raw.strip()
    return "" if raw == "" else f"{raw}%"


def build() -> tuple[list[dict[str, str]], dict[str, str]]:
    hs6 = {r["hscode"]: r["description"] for r in _read(HERE / "sources/hs2022_subheadings.csv")}
    derived = {r["prefix"]: r for r in _read(HERE / "derived_rates.csv")}
    extract = _read(HERE / "sources/cn_tariff_2026_extract.csv")
    overrides = _read(HERE / "tariff_overrides.csv")

    lines: dict[str, dict[str, str]] = {}
    sources: dict[str, str] = {}

    for code6, desc in hs6.items():
        if code6[:2] in CHAPTERS:
            code = code6 + "0000"
            lines[code] = {"hs_code": code, "description": desc}
            sources[code] = "HS6+DERIVED"

    for row in extract:
        code8 = row["code8"]
        lines.pop(code8[:6] + "0000", None)
        sources.pop(code8[:6] + "0000", None)
        code = code8 + "00"
        parent = hs6.get(code8[:6], "")
        zh = row["name_zh"]
        desc = f"{parent} ({zh})" if parent else zh
        lines[code] = {
            "hs_code": code,
            "description": desc,
            "mfn": _pct(row["mfn"]),
            "provisional": _pct(row["provisional"]),
        }
        sources[code] = "DCD887+DERIVED(general,units,vat)"

    for row in overrides:
        code = row["hs_code"]
        if code[6:] != "0000":
            lines.pop(code[:6] + "0000", None)
            sources.pop(code[:6] + "0000", None)
        if code[8:] != "00":
            lines.pop(code[:8] + "00", None)
            sources.pop(code[:8] + "00", None)
        line = {k: row[k] for k in HEADER}
        lines[code] = line
        filled = [k for k in ("mfn", "general", "unit1", "vat") if not row[k]]
        sources[code] = row["source"] + (f"+DERIVED({','.join(filled)})" if filled else "")

    for code, line in lines.items():
        rule = derived[_longest(derived, code) or ""]
        line.setdefault("provisional", "")
        for key in ("unit1", "unit2"):
            if key not in line:
                line[key] = rule[key]
        if not line.get("unit1"):
            line["unit1"], line["unit2"] = rule["unit1"], rule["unit2"]
        for key in ("mfn", "general", "vat"):
            if not line.get(key):
                line[key] = rule[key]
        if code.startswith(FUEL_PREFIXES) and sources[code].startswith("HS6"):
            line["unit1"], line["unit2"] = "KGM", "LTR"
        for key in ("excise", "licence", "reference_price_cny", "price_unit"):
            line.setdefault(key, "")
        if "prohibited" not in line:
            pre = _longest(PROHIBITED_PREFIXES, code)
            line["prohibited"] = PROHIBITED_PREFIXES[pre] if pre else ""
        if not line["licence"] and sources[code].startswith(("HS6", "DCD887")):
            pre = _longest(LICENCE_PREFIXES, code)
            line["licence"] = LICENCE_PREFIXES[pre] if pre else ""

    ordered = [lines[c] for c in sorted(lines)]
    return ordered, {c: sources[c] for c in sorted(sources)}


def main() -> None:
    rows, sources = build()
    OUT_DIR.mkdir(exist_ok=True)
    with (OUT_DIR / "tariff.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    with (OUT_DIR / "tariff_sources.csv").open("w", encoding="utf-8", newline="") as handle:
        plain = csv.writer(handle, lineterminator="\n")
        plain.writerow(["hs_code", "source"])
        plain.writerows(sorted(sources.items()))
    print(f"{len(rows)} lines")


if __name__ == "__main__":
    main()
