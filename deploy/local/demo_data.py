"""Demo declarations: the i-th HTTP body, deterministic in ``i``, built from the reference data.

``sample_declaration_body(i)`` returns the JSON body of ``POST /v1/declarations`` (decimals as
strings). The bodies cycle through :data:`SCENARIOS` (``i % len(SCENARIOS)``): mostly
declarations every agency clears, and some that a rule stops (prohibited goods, a missing
import licence, undervaluation, a missing certificate, a quarantine alert, a first import, a
high-risk declarant, dangerous goods), by sea, by air and for export. ``i // len(SCENARIOS)``
varies the rest: origin country, bill of lading and containers, quantities and values.

Every code comes from the current reference data: tariff lines, exchange rates and declarants
of customs; the CIQ catalogue; port calls and manifests of the port authority. So each body
passes the intake's checks and gets from the agencies the decisions its scenario names in
``expected`` -- except that customs samples about 3 % of declarations at random (a keyed
hash of the declaration id under customs' secret sampling key), which turns a CLEAR into an
INSPECT.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from types import MappingProxyType
from typing import Any

from services.ciq.reference import load_reference as load_ciq
from services.customs.duties import CENT
from services.customs.reference import ManifestBill
from services.customs.reference import load_reference as load_customs
from services.port.reference import load_reference as load_port
from singlewindow.events import Decision, DeclarationType, DocumentType, TransportMode

CLEAR, INSPECT = Decision.CLEAR, Decision.INSPECT
NOMINAL_PRICE_CNY = Decimal("5.00")  # per unit, for tariff lines without a reference price

CURRENCY = MappingProxyType(
    {
        "AU": "AUD", "BE": "EUR", "BR": "USD", "CL": "USD", "CN": "USD", "DE": "EUR",
        "DK": "DKK", "ES": "EUR", "FR": "EUR", "GB": "GBP", "IT": "EUR", "JP": "JPY",
        "KR": "KRW", "MY": "MYR", "NL": "EUR", "NZ": "NZD", "PL": "EUR", "US": "USD",
        "VN": "USD",
    }
)  # fmt: skip
AIRPORT = MappingProxyType({"KR": "KRSEL", "JP": "JPTYO", "NZ": "NZAKL", "US": "USLAX"})
AIR_DESTINATION = "CNSHA"
AWB_PREFIX = {"KR": "180", "JP": "131", "NZ": "086", "US": "016"}  # IATA airline prefixes
CERTIFICATE_PREFIX = {
    DocumentType.HEALTH_CERTIFICATE: "HC",
    DocumentType.PHYTOSANITARY_CERTIFICATE: "PC",
    DocumentType.IMPORT_LICENSE: "IL",
    DocumentType.DANGEROUS_GOODS_DECLARATION: "DGD",
    DocumentType.CERTIFICATE_OF_ORIGIN: "CO",
}


@dataclass(frozen=True)
class DemoItem:
    hs_code: str
    quantity: Decimal  # in the tariff line's price unit (or first unit), scaled by the variant
    price_factor: Decimal  # declared unit value / reference price (below 0.30: undervalued)


@dataclass(frozen=True)
class Scenario:
    """One kind of demo declaration and the decisions the agencies should reach."""

    name: str
    declaration_type: DeclarationType
    mode: TransportMode
    declarants: tuple[str, ...]  # USCCs from the customs declarant profile; rotated
    countries: tuple[str, ...]  # origin (import) or destination (export); rotated
    items: tuple[DemoItem, ...]
    documents: tuple[DocumentType, ...]  # lodged besides invoice, packing list, bill of lading
    expected: Mapping[str, Decision]  # without customs' random sampling


def _item(hs_code: str, quantity: str, price_factor: str = "1.20") -> DemoItem:
    return DemoItem(hs_code, Decimal(quantity), Decimal(price_factor))


def _expect(
    customs: Decision = CLEAR, ciq: Decision = CLEAR, port: Decision = CLEAR
) -> Mapping[str, Decision]:
    return MappingProxyType({"customs": customs, "ciq": ciq, "port": port})


IMPORT, EXPORT = DeclarationType.IMPORT, DeclarationType.EXPORT
SEA, AIR = TransportMode.SEA, TransportMode.AIR
HC, PC = DocumentType.HEALTH_CERTIFICATE, DocumentType.PHYTOSANITARY_CERTIFICATE
IL = DocumentType.IMPORT_LICENSE
XIAMEN = "91350100M000100Y43"
PUJIANG = "91310115UKRECL7C9Y"
QIANHAI = "91440300R2WDMMRQ9A"
GANGCHENG = "91330200MNJFN5BB1U"
HUABEI = "91110105F4Y88L4U5D"
SUZHOU = "913205007QUH50337E"
HAIRUN = "91370200FY8MC0U04H"
SHENWEI = "913101043D7RHKY94G"
LUJIANG = "91350200WY7UT95NXT"
NANSHA = "91440100Y98KW9045B"
YUANHANG = "911201166TW8EKQU79"
TIANFU = "915101008KJD3KPX8B"

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("clear-laptops", IMPORT, SEA, (XIAMEN,), ("NL", "BE", "DE", "GB"),
             (_item("8471300000", "120.5"),), (), _expect()),
    Scenario("clear-smartphones", IMPORT, SEA, (PUJIANG,), ("KR", "JP"),
             (_item("8517130000", "35.2"),), (), _expect()),
    Scenario("ciq-beef-certified", IMPORT, SEA, (GANGCHENG, HUABEI), ("AU", "NZ"),
             (_item("0202300000", "24000"),), (HC,), _expect()),
    Scenario("clear-toys-and-shoes", IMPORT, SEA, (QIANHAI,), ("VN", "MY"),
             (_item("9503008900", "3200"), _item("6403990000", "850.75")), (), _expect()),
    Scenario("prohibited-worn-clothing", IMPORT, SEA, (QIANHAI,), ("US", "GB"),
             (_item("6309000000", "18000"),), (), _expect(customs=Decision.REJECT)),
    Scenario("air-processors", IMPORT, AIR, (SUZHOU,), ("KR", "JP"),
             (_item("8542319000", "12.4"),), (), _expect()),
    Scenario("ciq-cherries-without-phyto", IMPORT, SEA, (HAIRUN,), ("CL", "US"),
             (_item("0809290000", "9800"),), (), _expect(ciq=Decision.HOLD)),
    Scenario("ciq-wine-certified", IMPORT, SEA, (GANGCHENG,), ("FR", "ES", "IT"),
             (_item("2204210000", "7200"),), (HC,), _expect()),
    Scenario("licence-missing-cars", IMPORT, SEA, (PUJIANG,), ("US", "DE"),
             (_item("8703234110", "3"),), (), _expect(customs=Decision.HOLD, ciq=INSPECT)),
    Scenario("export-toys", EXPORT, SEA, (QIANHAI,), ("US", "NL", "DE", "KR"),
             (_item("9503008900", "5400"),), (), _expect()),
    Scenario("undervalued-laptops", IMPORT, SEA, (XIAMEN,), ("DE", "NL"),
             (_item("8471300000", "240", "0.10"),), (), _expect(customs=Decision.HOLD)),
    Scenario("ciq-soybeans-certified", IMPORT, SEA, (HAIRUN,), ("BR", "US"),
             (_item("1201900000", "52000"),), (PC,), _expect()),
    Scenario("air-infant-formula", IMPORT, AIR, (GANGCHENG,), ("NZ",),
             (_item("1901101090", "850"),), (HC, IL), _expect()),
    Scenario("ciq-pork-under-asf-alert", IMPORT, SEA, (HUABEI,), ("DE", "PL", "IT"),
             (_item("0406900000", "1200"), _item("0203290000", "22000")), (HC,),
             _expect(ciq=Decision.REJECT)),
    Scenario("clear-steel-plate", IMPORT, SEA, (SUZHOU,), ("JP", "KR"),
             (_item("7208510000", "48000"),), (), _expect()),
    Scenario("dg-methanol-declared", IMPORT, SEA, (SHENWEI,), ("MY",),
             (_item("2905110000", "21000"),), (DocumentType.DANGEROUS_GOODS_DECLARATION,),
             _expect(ciq=INSPECT, port=INSPECT)),
    Scenario("ciq-inspected-electric-cars", IMPORT, SEA, (LUJIANG,), ("DE", "GB"),
             (_item("8703800000", "4"),), (IL,), _expect(ciq=INSPECT)),
    Scenario("air-smartphones", IMPORT, AIR, (PUJIANG,), ("US", "KR"),
             (_item("8517130000", "8.6"),), (), _expect()),
    Scenario("ciq-unregistered-importer-salmon", IMPORT, SEA, (TIANFU,), ("NZ", "GB"),
             (_item("0303130000", "6500"),), (HC,), _expect(ciq=Decision.HOLD)),
    Scenario("high-risk-declarant", IMPORT, SEA, (NANSHA, YUANHANG), ("VN", "US"),
             (_item("6110200000", "2400"),), (), _expect(customs=Decision.INSPECT)),
)  # fmt: skip


# The customs broker the demo, the benchmarks and the e2e tests lodge as: it acts for every
# demo declarant (a power of attorney for each), so its token names all their USCCs.
DEMO_BROKER = "demo-broker"


def demo_usccs() -> tuple[str, ...]:
    """Every USCC a demo declaration can name, sorted."""
    return tuple(sorted({uscc for case in SCENARIOS for uscc in case.declarants}))


def scenario_body(name: str) -> dict[str, Any]:
    """The body of the first demo declaration of the scenario ``name``."""
    return sample_declaration_body(next(i for i, s in enumerate(SCENARIOS) if s.name == name))


def joint_inspection_body() -> dict[str, Any]:
    """Electric cars (CIQ inspects every imported vehicle) lodged for a high-risk consignee
    (customs examines): two agencies inspect, one joint order."""
    body = scenario_body("ciq-inspected-electric-cars")
    body["declarant"] = body["domestic_party"] = scenario_body("high-risk-declarant")["declarant"]
    return body


def scenario(i: int) -> Scenario:
    """The scenario of the i-th demo declaration."""
    return SCENARIOS[i % len(SCENARIOS)]


def sample_declaration_body(i: int) -> dict[str, Any]:
    """The JSON body (HTTP API shape, decimals as strings) of the i-th demo declaration."""
    if i < 0:
        raise ValueError(f"i must be >= 0, got {i}")
    case = scenario(i)
    variant = i // len(SCENARIOS)
    customs = load_customs()
    country = case.countries[variant % len(case.countries)]
    uscc = case.declarants[variant % len(case.declarants)]
    declarant = customs.declarants[uscc]
    currency = CURRENCY[country]
    rate = customs.cny_per_unit[currency]
    scale = Decimal(1 + variant % 7)
    step = Decimal(variant % 5) / 10  # 0.0 .. 0.4 on top of the scenario's price factor
    documents = [
        {"type": DocumentType.COMMERCIAL_INVOICE.value, "reference": f"INV-2026-{i:06d}"},
        {"type": DocumentType.PACKING_LIST.value, "reference": f"PL-2026-{i:06d}"},
    ]
    transport = _transport(case, country, variant, i)
    if case.mode is SEA:
        documents.append(
            {"type": DocumentType.BILL_OF_LADING.value, "reference": transport["bill_of_lading"]}
        )
    for document in case.documents:
        reference = f"{CERTIFICATE_PREFIX[document]}-{country}-2026-{i:06d}"
        documents.append({"type": document.value, "reference": reference})
    licences = [d["reference"] for d in documents if d["type"] == IL.value]
    items = []
    net = Decimal(0)
    for line in case.items:
        tariff = customs.tariff[line.hs_code]
        quantity = line.quantity * scale
        price = tariff.reference_price_cny or NOMINAL_PRICE_CNY
        factor = line.price_factor + (step if line.price_factor >= 1 else step / 10)
        value = (price * quantity * factor / rate).quantize(CENT)
        quantities = _statutory(
            tariff.unit1 or tariff.price_unit, tariff.unit2, tariff.price_unit, quantity
        )
        net += quantities.get("KGM", quantity)
        item = {
            "hs_code": line.hs_code,
            "description": tariff.description,
            "declaration_elements": f"0|0|{tariff.description[:60]}|brand {variant % 3}",
            "origin_country": "CN" if case.declaration_type is EXPORT else country,
            "quantity": _plain(quantities[tariff.unit1 or tariff.price_unit]),
            "unit": tariff.unit1 or tariff.price_unit,
            "invoice_price": str(value),
        }
        if tariff.unit2:
            item |= {
                "second_quantity": _plain(quantities[tariff.unit2]),
                "second_unit": tariff.unit2,
            }
        if tariff.licence and licences:
            item["licences"] = licences
        registration = manufacturer(line.hs_code, country)
        if case.declaration_type is IMPORT and registration is not None:
            item["manufacturer_registration"] = registration
        items.append(item)
    net = max(net, Decimal(1)).quantize(Decimal("0.001"))
    if "gross_weight_kg" in transport:  # as on the manifest; the goods weigh 90 % of it
        net = (Decimal(transport["gross_weight_kg"]) * Decimal("0.9")).quantize(Decimal("0.001"))
    transport = {
        "gross_weight_kg": _plain(net * Decimal("1.08")),
        "packages": 1 + int(net) // 500,
        "package_kind": "CT",
        **transport,
        "net_weight_kg": _plain(net),
        "trade_country": country,
        "departure_country": country,
        "entry_customs": OFFICE[case.mode],
        "entry_port": "CNSHA",
    }
    company = {
        "uscc": declarant.uscc,
        "customs_code": customs_code(declarant.uscc),
        "name": declarant.name,
    }
    return {
        "declaration_type": case.declaration_type.value,
        "trade_mode": "0110",
        "levy_nature": "101",
        "declaration_office": OFFICE[case.mode],
        "declarant": company,
        "domestic_party": company,
        "overseas_party": {"name": f"Demo Trading {country} Ltd.", "country": country},
        "valuation": {
            "incoterm": "FOB" if case.declaration_type is EXPORT else "CIF",
            "currency": currency,
            "special_relationship": False,
            "price_influenced": False,
            "royalties_payable": False,
        },
        "transport": transport,
        "items": items,
        "documents": documents,
    }


OFFICE = MappingProxyType({SEA: "2248", AIR: "2200"})  # 洋山海关; 上海海关 for the airport


def customs_code(uscc: str) -> str:
    """A well-formed enterprise customs code for a demo company: its USCC's division (4
    digits), zone type 9, economic type 6, and 4 characters of its USCC's organisation code."""
    return f"{uscc[2:6]}96{uscc[8:12]}"


def _statutory(
    unit1: str, unit2: str | None, price_unit: str, quantity: Decimal
) -> dict[str, Decimal]:
    """Quantities in the statutory units, from ``quantity`` in the price unit: the same
    number in a mass or volume unit, one piece per 2 of the price unit in a count unit."""
    found = {price_unit: quantity}
    for unit in (unit1, unit2):
        if unit and unit not in found:
            counted = unit in ("H87", "SET", "PR", "MIL")
            found[unit] = (
                max(Decimal(1), (quantity / 2).quantize(Decimal(1))) if counted else quantity
            )
    return found


def _plain(number: Decimal) -> str:
    return format(number.normalize(), "f")


def _transport(case: Scenario, country: str, variant: int, i: int) -> dict[str, Any]:
    """The transport part of the body: an air waybill, or a bill of the customs manifest
    declared as the carrier filed it (every container, its packages and gross weight)."""
    if case.mode is AIR:
        serial = 1_000_000 + (i * 7919) % 9_000_000  # 7 digits, deterministic in i
        return {
            "mode": AIR.value,
            "bill_of_lading": f"{AWB_PREFIX[country]}-{serial}{serial % 7}",  # air waybill
            "port_of_loading": AIRPORT[country],
            "port_of_discharge": AIR_DESTINATION,
        }
    bills = _bills(case.declaration_type, country)
    bill = bills[variant % len(bills)]
    transport: dict[str, Any] = {
        "mode": bill.mode.value,
        "voyage": bill.voyage,
        "bill_of_lading": bill.bill_of_lading,
        "port_of_loading": bill.port_of_loading,
        "port_of_discharge": bill.port_of_discharge,
        "packages": bill.packages,
        "package_kind": bill.package_kind,
        "gross_weight_kg": _plain(bill.gross_weight_kg),
    }
    if bill.vessel_imo is not None:
        transport["vessel_imo"] = bill.vessel_imo
    if bill.containers:
        transport["containers"] = list(bill.containers)
    return transport


@cache
def _bills(declaration_type: DeclarationType, country: str) -> tuple[ManifestBill, ...]:
    """Sea bills of the customs manifest into a port the port authority serves from
    ``country`` (import) or out of one to it (export)."""
    port = load_port()
    bills = []
    for bill in load_customs().manifest.bills.values():
        if declaration_type is IMPORT:
            ours, theirs = bill.port_of_discharge, bill.port_of_loading
        else:
            ours, theirs = bill.port_of_loading, bill.port_of_discharge
        if bill.mode is SEA and ours in port.served_ports and theirs[:2] == country:
            bills.append(bill)
    if not bills:
        raise LookupError(f"no {declaration_type} bill of lading for {country} in the manifest")
    return tuple(bills)


def manufacturer(hs_code: str, country: str) -> str | None:
    """A registered overseas manufacturer (GACC Decree 248) of such goods in ``country``: the
    registration that runs longest (one that has expired would be held)."""
    found = [
        m
        for m in load_ciq().manufacturers.values()
        if m.country == country and hs_code.startswith(m.hs_prefixes)
    ]
    return max(found, key=lambda m: (m.expires_on, m.registration)).registration if found else None
