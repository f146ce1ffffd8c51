"""Regenerate the shipped ISO 3166-1 / ISO 4217 CSVs from the installed ``pycountry``.

Run from the repository root: ``.venv/bin/python singlewindow/data/generate_code_lists.py``.
Only this script imports pycountry; ``singlewindow.identifiers`` reads the CSVs.
"""

from __future__ import annotations

import csv
from importlib.metadata import version
from pathlib import Path

import pycountry

HERE = Path(__file__).resolve().parent


def _write(name: str, header: list[str], rows: list[list[str]]) -> None:
    with (HERE / name).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(sorted(rows))


def main() -> None:
    _write(
        "iso3166_countries.csv",
        ["alpha_2", "alpha_3", "numeric", "name"],
        [[c.alpha_2, c.alpha_3, c.numeric, c.name] for c in pycountry.countries],
    )
    _write(
        "iso4217_currencies.csv",
        ["alpha_3", "numeric", "name"],
        [[c.alpha_3, c.numeric, c.name] for c in pycountry.currencies],
    )
    print(f"written from pycountry {version('pycountry')}")


if __name__ == "__main__":
    main()
