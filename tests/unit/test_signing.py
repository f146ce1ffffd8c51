"""Signed events: what the key registry accepts and refuses, the canonical form, rotation,
revocation, and the command line the operators keep the registry with."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from singlewindow import events as ev
from singlewindow.avro.registry import default_registry
from singlewindow.signing import (
    KeyRegistry,
    RegistryFile,
    SignatureError,
    SigningKey,
    cli,
    register,
    signed_message,
    signer_of,
)
from tests import factories
from tests.golden.refresh import SAMPLES

T0 = factories.T0
REGISTRY = factories.REGISTRY
SIGNED_TYPES = [ev.DeclarationSubmitted, ev.AgencyVerdict, ev.ClearanceResult, ev.JoinState]


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_each_event_verifies_as_signed_by_its_own_service(event: ev.Event) -> None:
    payload = factories.signed(event.unsigned())
    decoded = type(event).from_avro(payload)
    assert decoded.signature is not None and decoded.signature.signed_at == T0
    assert REGISTRY.check(payload, decoded).signer == signer_of(event)
    assert decoded.unsigned() == event.unsigned()


def test_who_signs_what() -> None:
    assert signer_of(factories.declaration()) == "intake"
    assert signer_of(factories.verdict(agency="ciq")) == "ciq"
    assert signer_of(factories.result()) == signer_of(factories.join_state()) == "aggregator"


@pytest.mark.parametrize("kind", SIGNED_TYPES, ids=lambda k: k.__name__)
def test_the_signature_is_the_last_field_of_every_signed_event(kind: type[ev.Event]) -> None:
    """The canonical form (the encoding up to the signature value) needs it last."""
    schema = default_registry().reader(kind.AVRO_NAME)
    assert schema["fields"][-1]["name"] == "signature"
    signature = default_registry().reader(ev.Signature.AVRO_NAME)
    assert [f["name"] for f in signature["fields"]][-1] == "value"


def test_the_signed_bytes_are_the_payload_up_to_the_value() -> None:
    payload = factories.signed(factories.verdict())
    signature = ev.AgencyVerdict.from_avro(payload).signature
    assert signature is not None and len(signature.value) == 64
    message = signed_message(payload, signature)
    assert payload == message + b"\x80\x01" + signature.value  # 64, as an Avro long
    assert message.startswith(b"\xc3\x01")  # the header and writer fingerprint are signed


def test_an_unsigned_event_is_refused() -> None:
    event = factories.declaration()
    with pytest.raises(SignatureError, match="unsigned DeclarationSubmitted"):
        REGISTRY.check(event.to_avro(), event)


def test_an_event_of_a_release_before_signatures_reads_as_unsigned() -> None:
    golden = Path(factories.__file__).parent / "golden"
    old = (golden / "cn.singlewindow.events.AgencyVerdict.99ad87ebdd44e8d0.avro").read_bytes()
    verdict = ev.AgencyVerdict.from_avro(old)
    assert verdict.signature is None
    with pytest.raises(SignatureError, match="unsigned"):
        REGISTRY.check(old, verdict)


def test_any_changed_byte_breaks_the_signature() -> None:
    genuine = factories.signed(factories.verdict("D-0001"))
    payload = bytearray(genuine)
    at = payload.index(b"D-0001")
    payload[at + 5] = ord("2")  # one digit of an id: still a valid event
    tampered = ev.AgencyVerdict.from_avro(bytes(payload))
    assert tampered != ev.AgencyVerdict.from_avro(genuine)
    with pytest.raises(SignatureError, match="wrong signature"):
        REGISTRY.check(bytes(payload), tampered)


def test_a_signature_taken_from_another_event_is_wrong() -> None:
    genuine = ev.AgencyVerdict.from_avro(factories.signed(factories.verdict("D-1")))
    forged = factories.verdict("D-2").model_copy(update={"signature": genuine.signature})
    with pytest.raises(SignatureError, match="wrong signature"):
        REGISTRY.check(forged.to_avro(), forged)


def test_a_key_not_in_the_registry_is_refused() -> None:
    stranger = SigningKey.generate("customs-stranger")
    _, payload = stranger.sign(factories.verdict(), T0)
    with pytest.raises(SignatureError, match="unknown signing key 'customs-stranger'"):
        REGISTRY.check(payload, ev.AgencyVerdict.from_avro(payload))


def test_one_agency_cannot_sign_for_another() -> None:
    customs_verdict = factories.verdict(agency="customs")
    _, payload = factories.SIGNING["ciq"].sign(customs_verdict, T0)
    with pytest.raises(SignatureError, match="belongs to ciq, not customs"):
        REGISTRY.check(payload, ev.AgencyVerdict.from_avro(payload))


def test_only_the_aggregator_signs_results_and_only_the_intake_declarations() -> None:
    for event, signer in ((factories.result(), "customs"), (factories.declaration(), "port")):
        _, payload = factories.SIGNING[signer].sign(event, T0)
        with pytest.raises(SignatureError, match=f"belongs to {signer}"):
            REGISTRY.check(payload, type(event).from_avro(payload))


def test_rotation_keeps_old_signatures_valid_and_refuses_the_old_key_afterwards() -> None:
    old, new = SigningKey.generate("customs-1"), SigningKey.generate("customs-2")
    switch = T0 + timedelta(days=30)
    registry = KeyRegistry(version=1, keys=(register(old, "customs", T0),))
    registry = registry.with_key(register(new, "customs", switch), retire_others_at=switch)
    assert registry.version == 2
    assert registry.key("customs-1").valid_until == switch  # type: ignore[union-attr]
    verdict = factories.verdict()
    before = old.sign(verdict, switch - timedelta(milliseconds=1))[1]
    assert registry.check(before, ev.AgencyVerdict.from_avro(before)).key_id == "customs-1"
    after = old.sign(verdict, switch)[1]
    with pytest.raises(SignatureError, match="customs-1 was not valid at"):
        registry.check(after, ev.AgencyVerdict.from_avro(after))
    fresh = new.sign(verdict, switch)[1]
    assert registry.check(fresh, ev.AgencyVerdict.from_avro(fresh)).key_id == "customs-2"
    too_early = new.sign(verdict, switch - timedelta(seconds=1))[1]
    with pytest.raises(SignatureError, match="customs-2 was not valid at"):
        registry.check(too_early, ev.AgencyVerdict.from_avro(too_early))


def test_a_revoked_key_is_refused_for_everything_it_ever_signed() -> None:
    payload = factories.signed(factories.verdict())
    revoked = REGISTRY.revoked("customs-test", T0 + timedelta(days=1), "leaked")
    assert revoked.version == REGISTRY.version + 1
    with pytest.raises(SignatureError, match=r"customs-test is revoked since .*: leaked"):
        revoked.check(payload, ev.AgencyVerdict.from_avro(payload))  # signed before, too


def test_a_registry_with_a_key_id_twice_or_a_bad_key_is_refused() -> None:
    entry = register(factories.SIGNING["port"], "port", T0).model_dump(mode="json")
    with pytest.raises(ValueError, match="registered twice"):
        KeyRegistry.model_validate({"version": 1, "keys": [entry, entry]})
    with pytest.raises(ValueError, match="not a raw Ed25519 key"):
        KeyRegistry.model_validate({"version": 1, "keys": [{**entry, "public_key": "AAAA"}]})


def test_a_running_service_sees_a_revocation_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    REGISTRY.save(path)
    live = RegistryFile(path, recheck_s=0)
    payload = factories.signed(factories.declaration())
    declaration = ev.DeclarationSubmitted.from_avro(payload)
    assert live.check(payload, declaration).key_id == "intake-test"
    REGISTRY.revoked("intake-test", T0, "rotated out in a hurry").save(path)
    with pytest.raises(SignatureError, match="revoked"):
        live.check(payload, declaration)
    path.write_text("{ half a file")  # broken: the last good version stays in force
    with pytest.raises(SignatureError, match="revoked"):
        live.check(payload, declaration)


def test_the_command_line_makes_rotates_and_revokes_keys(tmp_path: Path) -> None:
    runner, registry = CliRunner(), tmp_path / "registry.json"
    first = tmp_path / "customs-1.pem"
    args = ["--registry", str(registry)]
    done = runner.invoke(cli, ["new-key", "customs", "customs-1", "--key-file", str(first), *args])
    assert done.exit_code == 0, done.output
    assert first.stat().st_mode & 0o777 == 0o600
    second = tmp_path / "customs-2.pem"
    done = runner.invoke(
        cli, ["new-key", "customs", "customs-2", "--key-file", str(second), "--rotate", *args]
    )
    assert done.exit_code == 0, done.output
    loaded = KeyRegistry.load(registry)
    assert loaded.version == 2 and [k.key_id for k in loaded.keys] == ["customs-1", "customs-2"]
    assert loaded.keys[0].valid_until is not None and loaded.keys[1].valid_until is None
    key = SigningKey.from_pem("customs-2", second.read_bytes())
    payload = key.sign(factories.verdict(), loaded.keys[1].valid_from)[1]
    assert loaded.check(payload, ev.AgencyVerdict.from_avro(payload)).key_id == "customs-2"
    done = runner.invoke(cli, ["new-key", "customs", "customs-3", "--key-file", str(first), *args])
    assert done.exit_code != 0  # never overwrites a private key
    done = runner.invoke(cli, ["revoke", "customs-1", "--reason", "laptop stolen", *args])
    assert done.exit_code == 0, done.output
    assert json.loads(registry.read_text())["keys"][0]["revocation_reason"] == "laptop stolen"
    listing = runner.invoke(cli, ["list", *args]).output
    assert "registry version 3" in listing and "REVOKED" in listing
    assert "PRIVATE" not in registry.read_text()  # public keys only
