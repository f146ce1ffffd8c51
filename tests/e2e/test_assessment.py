"""Customs' assessment through the whole platform, over HTTP: a car, a whisky, gasoline in
bulk and a rail container, lodged as a trader would and assessed to the cent.

The invoices are in CNY, so the figures do not depend on the month's exchange rates; every
figure is computed by hand from the shipped tariff (customs-2026.11-r2 and the versions that
inherit it) with the rules of :mod:`services.customs.duties`:

- duty: MFN ad valorem, or the provisional rate where the tariff has one (gasoline: 1 %);
- consumption tax: ad valorem (V + D) / (1 - r) * r; specific Q * a; compound
  (V + D + Q * a) / (1 - r) * r + Q * a;
- import VAT 13 % on V + D + CT; each tax rounded half up to 0.01 CNY.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import httpx
import pytest

from deploy.local.demo_data import XIAMEN, customs_code, scenario_body
from tests.e2e.checks import trader
from tests.e2e.conftest import Platform
from tests.e2e.test_pipeline import final_status, submit

pytestmark = pytest.mark.e2e


def lodged(
    transport: dict[str, Any], item: dict[str, Any], *documents: tuple[str, str]
) -> dict[str, Any]:
    """A CIF import in CNY by the demo importer in Xiamen, declaring for itself."""
    body = copy.deepcopy(scenario_body("clear-laptops"))
    company = {
        "uscc": XIAMEN,
        "customs_code": customs_code(XIAMEN),
        "name": body["declarant"]["name"],
    }
    origin = item["origin_country"]
    body |= {
        "declarant": company,
        "domestic_party": company,
        "overseas_party": {"name": f"Exporter of {item['description']}", "country": origin},
        "valuation": body["valuation"] | {"incoterm": "CIF", "currency": "CNY"},
        "transport": transport | {"trade_country": origin, "departure_country": origin},
        "items": [item],
    }
    body["documents"] = [
        {"type": "COMMERCIAL_INVOICE", "reference": f"INV-E2E-{item['hs_code']}"},
        *({"type": kind, "reference": reference} for kind, reference in documents),
    ]
    return body


SEA_SHANGHAI = {
    "mode": "SEA",
    "port_of_discharge": "CNSHA",
    "entry_customs": "2248",
    "entry_port": "CNSHA",
}

CAR = lodged(
    SEA_SHANGHAI | {
        "vessel_imo": "9074729", "voyage": "001E", "bill_of_lading": "COSU6182736513",
        "port_of_loading": "DEHAM", "containers": ["CSQU4118522"],
        "packages": 1, "package_kind": "NE", "gross_weight_kg": "1520", "net_weight_kg": "1450",
    },
    {
        "hs_code": "8703234110", "description": "Saloon car, petrol, 1,984 cc",
        "declaration_elements": "4|3|spark-ignition|1984cc|5 seats|VW Golf GTI",
        "origin_country": "DE", "quantity": "1", "unit": "H87",
        "second_quantity": "1450", "second_unit": "KGM",
        "invoice_price": "165300.00", "licences": ["AIL-2026-E2E-CAR"],
    },
    ("IMPORT_LICENSE", "AIL-2026-E2E-CAR"),
)  # fmt: skip
WHISKY = lodged(
    SEA_SHANGHAI | {
        "vessel_imo": "9839131", "voyage": "0FAL5E", "bill_of_lading": "CMDUSOU0412633",
        "port_of_loading": "GBSOU", "containers": ["CMAU2085172"],
        "packages": 111, "package_kind": "CS", "gross_weight_kg": "1850", "net_weight_kg": "1200",
    },
    {
        "hs_code": "2208300000", "description": "Scotch whisky, 40 % vol, 0.75 l bottles",
        "declaration_elements": "0|0|malt whisky|40%vol|0.75L|Glen E2E",
        "origin_country": "GB", "quantity": "1000", "unit": "LTR",
        "second_quantity": "1200", "second_unit": "KGM", "invoice_price": "100000.00",
        "manufacturer_registration": "CGBR22082201100014",
    },
    ("HEALTH_CERTIFICATE", "HC-GB-2026-E2E"),
)  # fmt: skip
GASOLINE = lodged(
    SEA_SHANGHAI | {
        "vessel_imo": "9612349", "voyage": "2611E", "bill_of_lading": "PEXSIN2611001",
        "port_of_loading": "SGSIN",  # a tanker: bulk liquid, no containers
        "packages": 1, "package_kind": "VL",
        "gross_weight_kg": "1000000", "net_weight_kg": "1000000",
    },
    {
        "hs_code": "2710121000", "description": "Motor gasoline, RON 95",
        "declaration_elements": "0|0|motor gasoline|RON 95|bulk", "origin_country": "SG",
        "quantity": "1000000", "unit": "KGM", "second_quantity": "1350000", "second_unit": "LTR",
        "invoice_price": "4971400.00", "un_number": "UN1203", "licences": ["AIL-2026-E2E-FUEL"],
    },
    ("IMPORT_LICENSE", "AIL-2026-E2E-FUEL"),
    ("DANGEROUS_GOODS_DECLARATION", "DGD-2026-E2E-FUEL"),
)  # fmt: skip
RAIL = lodged(
    {
        "mode": "RAIL", "voyage": "X8024", "bill_of_lading": "CIMSMGS26110042",
        "port_of_loading": "DEDUI", "port_of_discharge": "CNCKG",  # China-Europe train
        "containers": ["TBJU2611046", "TBJU2611051"],
        "entry_customs": "8000", "entry_port": "CNCKG",
        "packages": 96, "package_kind": "PX", "gross_weight_kg": "38400", "net_weight_kg": "36000",
    },
    {
        "hs_code": "6110200000", "description": "Cotton pullovers, knitted",
        "declaration_elements": "0|0|pullover|knitted|100% cotton|E2E",
        "origin_country": "DE", "quantity": "2000", "unit": "KGM",
        "second_quantity": "8000", "second_unit": "H87", "invoice_price": "200000.00",
    },
)  # fmt: skip


def tax_lines(answer: dict[str, Any]) -> list[tuple[str, str, str]]:
    customs = next(v for v in answer["verdicts"] if v["agency"] == "customs")
    (line,) = customs["duties"]
    return [(t["kind"], t["basis"], t["amount"]) for t in line["taxes"]]


def collected(answer: dict[str, Any]) -> dict[str, str]:
    customs = next(v for v in answer["verdicts"] if v["agency"] == "customs")
    return {t["kind"]: t["collected"] for t in customs["tax_totals"]}


async def test_a_car_a_whisky_gasoline_in_bulk_and_a_rail_container_are_assessed_to_the_cent(
    platform: Platform,
) -> None:
    async with httpx.AsyncClient(base_url=platform.url, timeout=60, headers=trader()) as client:
        ids = [await submit(client, body) for body in (CAR, WHISKY, GASOLINE, RAIL)]
        car, whisky, gasoline, rail = await asyncio.gather(*(final_status(client, i) for i in ids))

    # The car, 165,300.00 CNY CIF (20,000 EUR at 8.2650: the example):
    # duty MFN 15 % = 24,795.00; consumption tax 5 % = (165,300 + 24,795) / 0.95 * 0.05 =
    # 10,005.00; VAT 13 % = (165,300 + 24,795 + 10,005) * 0.13 = 26,013.00.
    assert tax_lines(car) == [
        ("DUTY", "MFN", "24795.00"),
        ("CONSUMPTION_TAX", "8703234110", "10005.00"),
        ("VAT", "8703234110", "26013.00"),
    ]
    assert car["result"]["total_duties"] == "60813.00"

    # Whisky, 1,000 l at 100,000.00 CNY: duty MFN 10 % = 10,000.00; consumption tax
    # 20 % + 0.912 CNY/l (spirits) = (100,000 + 10,000 + 912) / 0.8 * 0.2 + 912 = 28,640.00;
    # VAT = (100,000 + 10,000 + 28,640) * 0.13 = 18,023.20. Total 56,663.20.
    assert tax_lines(whisky) == [
        ("DUTY", "MFN", "10000.00"),
        ("CONSUMPTION_TAX", "2208300000", "28640.00"),
        ("VAT", "2208300000", "18023.20"),
    ]
    assert whisky["result"]["total_duties"] == "56663.20"

    # Gasoline in bulk, 1,350,000 l at 4,971,400.00 CNY (700,000 USD at 7.1020): duty at the
    # provisional 1 % (not MFN 5 %) = 49,714.00; consumption tax 1.52 CNY/l = 2,052,000.00;
    # VAT = (4,971,400 + 49,714 + 2,052,000) * 0.13 = 919,504.82. Total 3,021,218.82.
    assert tax_lines(gasoline) == [
        ("DUTY", "PROVISIONAL", "49714.00"),
        ("CONSUMPTION_TAX", "2710121000", "2052000.00"),
        ("VAT", "2710121000", "919504.82"),
    ]
    assert gasoline["result"]["total_duties"] == "3021218.82"

    # Pullovers in two containers on a China-Europe train, 200,000.00 CNY: duty MFN 6 % =
    # 12,000.00; VAT = 212,000 * 0.13 = 27,560.00. Total 39,560.00.
    assert tax_lines(rail) == [("DUTY", "MFN", "12000.00"), ("VAT", "6110200000", "27560.00")]
    assert rail["result"]["total_duties"] == "39560.00"
    assert collected(rail) == {"DUTY": "12000.00", "VAT": "27560.00"}

    # Bulk cargo and containerised rail freight are declared and matched to the manifest:
    # no agency refuses them for their containers, or their lack of containers.
    for answer in (car, whisky, gasoline, rail):
        codes = {r["code"] for v in answer["verdicts"] for r in v["reasons"]}
        assert not codes & {"CUS-MANIFEST", "CUS-STATUTORY-UNIT", "CUS-LICENCE-MISSING"}, codes
        assert answer["status"] != "REJECTED", answer
    assert "port" not in {v["agency"] for v in rail["verdicts"]}  # a rail port: not the seaport's
