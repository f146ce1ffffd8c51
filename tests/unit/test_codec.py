"""The wire format: Avro single-object encoding with typed errors."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from decimal import Decimal

import avro.schema
import pytest
from fastavro.schema import to_parsing_canonical_form
from hypothesis import given
from hypothesis import strategies as st

from services.customs import rules as customs_rules
from singlewindow import events as ev
from singlewindow.avro import (
    CodecError,
    TruncatedBody,
    UnknownFingerprint,
    WrongHeader,
    decode,
    default_registry,
    encode,
)
from singlewindow.avro.codec import SchemaMismatch
from tests import factories

PORT_DUES = ev.Charge(code="PORT_DUES", description="port dues", amount=Decimal("75.40"))
LAPTOPS = factories.declaration().items[0]
CLAIMED = factories.declaration(  # every optional record filled in
    "D-0002",
    items=(
        LAPTOPS.model_copy(
            update={"origin_claim": ev.OriginClaim(agreement="RCEP", certificate="CO-1")}
        ),
    ),
)
ASSESSED = customs_rules.assess(
    CLAIMED, customs_rules.load_reference(), factories.T0, factories.sampling_key()
)  # with tax lines and tax totals
SAMPLES = [
    factories.declaration(),
    CLAIMED,
    ASSESSED,
    factories.verdict(),
    factories.verdict(agency="port", charges=(PORT_DUES,)),
    factories.result(),
    factories.finding(
        outcome=ev.FindingOutcome.NON_COMPLIANT,
        measure=ev.Measure.SEIZURE,
        reasons=(ev.Reason(code="CIQ-PEST", message="live pests found", item=1),),
    ),
    factories.finding(outcome=ev.FindingOutcome.SAMPLED, samples=("S-1", "S-2")),
    factories.result(
        status=ev.ClearanceStatus.SANCTIONED,
        finding_ids=("F-1",),
        sanction=ev.Sanction(
            measure=ev.Measure.SEIZURE,
            agency="ciq",
            finding_id="F-1",
            reasons=(ev.Reason(code="CIQ-PEST", message="live pests found"),),
        ),
    ),
    factories.gate_out(),
    factories.gate_out(containers=()),  # bulk or air cargo: no containers
]


def crc64_avro(data: bytes) -> int:
    """The Avro specification's reference CRC-64-AVRO, written out independently."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_every_event_round_trips(event: ev.Event) -> None:
    payload = event.to_avro()
    assert payload[:2] == b"\xc3\x01"
    assert type(event).from_avro(payload) == event
    assert ev.decode_event(payload) == event


@pytest.mark.parametrize("name", sorted(default_registry().current))
def test_every_schema_round_trips(name: str) -> None:
    schema = default_registry().reader(name)
    if schema["type"] == "enum":
        for symbol in schema["symbols"]:
            assert decode(encode(name, symbol)) == (name, symbol)
        return
    sample = next(_records_of(ev.RECORDS[name]))
    decoded_name, decoded = decode(encode(name, sample.avro_datum()))
    assert decoded_name == name
    assert type(sample).model_validate(decoded) == sample


def _records_of(model: type[ev.AvroRecord]):  # type: ignore[no-untyped-def]
    """Every nested record of the sample events, to find one of the given type."""

    def walk(obj: object):  # type: ignore[no-untyped-def]
        if isinstance(obj, ev.AvroRecord):
            if isinstance(obj, model):
                yield obj
            for value in obj.__dict__.values():
                yield from walk(value)
        elif isinstance(obj, tuple):
            for value in obj:
                yield from walk(value)

    sample = factories.result(
        inspection=ev.InspectionOrder(
            order_id="O1",
            checks=(ev.InspectionCheck(agency="ciq", check="SAMPLE", item=1),),
        )
    )
    duty = ev.DutyLine(
        item=1,
        customs_value_cny=Decimal("10"),
        duty_rate=Decimal("0.1"),
        duty=Decimal("1"),
        vat_rate=Decimal("0.13"),
        vat=Decimal("1.43"),
    )
    signed = ev.AgencyVerdict.from_avro(factories.signed(factories.verdict()))
    taxes = (ev.TaxTotal(kind=ev.TaxKind.VAT, assessed=Decimal("13"), collected=Decimal("13")),)
    notice = ev.PaymentNotice(
        notice_id="N1",
        issued_at=factories.T0,
        due_by=factories.T0.date(),
        taxes=taxes,
        amount=Decimal("13"),
        outstanding=Decimal("0"),
    )
    settled = factories.result(
        version=2,
        sequence=3,
        payment_notice=notice,
        settlement=ev.Settlement(
            kind=ev.PaymentKind.PAYMENT,
            payment_ids=("P1",),
            paid=Decimal("13"),
            days_late=0,
            late_interest=Decimal("0"),
        ),
    )
    life = factories.join_state(
        version=2,
        notice=notice,
        payments=(factories.payment(),),
        withdrawal=factories.withdrawal(),
    )
    roots = (
        *SAMPLES,
        sample,
        factories.verdict(duties=(duty,)),
        factories.join_state(),
        signed,
        settled,
        life,
    )
    for root in roots:
        yield from walk(root)


def test_fingerprint_is_crc64_avro_little_endian_of_canonical_form() -> None:
    registry = default_registry()
    for name in registry.current:
        canonical = to_parsing_canonical_form(registry.reader(name))
        expected = crc64_avro(canonical.encode()).to_bytes(8, "little")
        assert registry.fingerprint(name) == expected
        # and the Avro reference implementation agrees
        assert avro.schema.parse(canonical).fingerprint("CRC-64-AVRO") == expected


def test_wrong_header_is_a_typed_error() -> None:
    payload = SAMPLES[0].to_avro()
    for bad in (b"", b"\xc3", b'{"json": true}', b"\xc3\x02" + payload[2:]):
        with pytest.raises(WrongHeader):
            decode(bad)


def test_unknown_fingerprint_is_a_typed_error() -> None:
    payload = SAMPLES[1].to_avro()
    with pytest.raises(UnknownFingerprint, match="unknown writer schema fingerprint"):
        decode(payload[:2] + b"\x00" * 8 + payload[10:])


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_truncated_body_is_a_typed_error(event: ev.Event) -> None:
    payload = event.to_avro()
    for cut in range(10, len(payload)):
        with pytest.raises(CodecError):
            decode(payload[:cut])
    with pytest.raises(TruncatedBody):
        decode(payload[: len(payload) - 1])
    with pytest.raises(TruncatedBody, match="after the record"):
        decode(payload + b"\x00")


def test_a_payload_of_another_type_is_refused() -> None:
    with pytest.raises(SchemaMismatch):
        ev.AgencyVerdict.from_avro(SAMPLES[0].to_avro())


@given(st.binary(max_size=300))
def test_random_bytes_never_escape_as_anything_but_codec_errors(data: bytes) -> None:
    with contextlib.suppress(CodecError):
        decode(data)


@given(st.binary(max_size=200))
def test_random_bodies_with_a_valid_header_raise_only_codec_errors(body: bytes) -> None:
    header = SAMPLES[0].to_avro()[:10]
    with contextlib.suppress(CodecError):
        decode(header + body)


def test_money_keeps_exact_decimals_and_refuses_more_places() -> None:
    event = factories.verdict(total_duties=Decimal("12345678.9"))
    assert ev.AgencyVerdict.from_avro(event.to_avro()).total_duties == Decimal("12345678.90")
    with pytest.raises(ValueError, match="decimal places"):
        factories.verdict(total_duties=Decimal("0.001"))
    with pytest.raises(ValueError):
        factories.verdict(total_duties=Decimal("Infinity"))


def test_times_must_carry_a_zone_and_are_kept_in_utc_millis() -> None:
    from datetime import datetime, timedelta, timezone

    shanghai = timezone(timedelta(hours=8))
    event = factories.verdict(decided_at=datetime(2026, 1, 1, 8, 0, 0, 123456, tzinfo=shanghai))
    assert event.decided_at.isoformat() == "2026-01-01T00:00:00.123000+00:00"
    assert ev.AgencyVerdict.from_avro(event.to_avro()).decided_at == event.decided_at
    with pytest.raises(ValueError, match="time zone"):
        factories.verdict(decided_at=datetime(2026, 1, 1))


@pytest.mark.parametrize("name", sorted(ev.RECORDS))
def test_models_mirror_their_schemas(name: str) -> None:
    schema = json.loads(json.dumps(default_registry().reader(name), default=str))
    assert {f["name"] for f in schema["fields"]} == set(ev.RECORDS[name].model_fields)
    for field in schema["fields"]:
        assert field.get("doc"), f"{name}.{field['name']} has no doc"


@pytest.mark.parametrize(
    "when", ["9999-12-31T23:59:59+00:00", "2200-01-01T00:00:00+00:00", "1970-01-01T00:00:00+00:00"]
)
def test_an_instant_outside_the_platforms_range_does_not_decode(when: str) -> None:
    """A hostile producer's 9999-12-31 is well-formed Avro; it must fail validation (and so be
    dead-lettered) rather than overflow a deadline downstream."""
    record = factories.declaration().model_dump()
    record["submitted_at"] = datetime.fromisoformat(when)
    payload = encode(ev.DeclarationSubmitted.AVRO_NAME, record)  # what a rogue client can send
    with pytest.raises(ValueError, match="outside 2000-2199"):
        ev.DeclarationSubmitted.from_avro(payload)
    with pytest.raises(ValueError, match="outside"):
        factories.declaration(submitted_at=datetime.fromisoformat(when))
