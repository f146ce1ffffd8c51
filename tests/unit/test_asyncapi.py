"""The event contract (docs/asyncapi.json): current, valid AsyncAPI 3.0.0, and true to the
code: every topic of the catalog, the writers and readers the ACLs allow, the registry's
Avro schemas (same fingerprints), the headers the producers write, the encoding and the
signature as the description tells them."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiokafka import ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastavro import schemaless_reader
from fastavro.schema import parse_schema

from services.audit.deadletters import REDRIVABLE
from singlewindow import asyncapi
from singlewindow.avro.codec import HEADER_LEN, MAGIC
from singlewindow.avro.registry import canonical_fingerprint, default_registry
from singlewindow.events import Event
from singlewindow.kafka import deadletter
from singlewindow.kafka.headers import REDRIVEN_FROM, event_headers
from singlewindow.security import Principal
from singlewindow.signing import signed_message, signer_of
from singlewindow.topics import DEAD_LETTERS, Topic
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "tests" / "data" / "asyncapi-3.0.0.schema.json").read_text())
Json = dict[str, Any]
_catalog, _principals = asyncapi.platform_inputs()  # the platform's, as the document has them
CATALOG, PRINCIPALS = tuple(_catalog), tuple(_principals)
EVENT_TOPICS = [t for t in CATALOG if t.value_schema is not None]


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(SCHEMA)
    return cls(SCHEMA, format_checker=cls.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def doc() -> Json:
    return asyncapi.platform_document()


def errors(validator: jsonschema.protocols.Validator, document: Json) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in validator.iter_errors(document)
    ]


def operations(doc: Json, topic: Topic, action: str) -> dict[str, Json]:
    """The operations of ``action`` on the channel of ``topic``, by principal."""
    ref = f"#/channels/{topic.name}"
    return {
        op["x-principal"]: op
        for op in doc["operations"].values()
        if op["channel"]["$ref"] == ref and op["action"] == action
    }


def members() -> list[Principal]:
    return [p for p in PRINCIPALS if not p.super_user]


def resolve(doc: Json, ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


# -- the schema and the validator --------------------------------------------------------


def test_the_asyncapi_schema_is_draft_07_and_so_is_the_validator() -> None:
    assert SCHEMA["$schema"].startswith("http://json-schema.org/draft-07/schema")
    assert SCHEMA["properties"]["asyncapi"]["const"] == "3.0.0"
    assert jsonschema.validators.validator_for(SCHEMA) is jsonschema.Draft7Validator
    jsonschema.Draft7Validator.check_schema(SCHEMA)


def test_the_committed_document_is_valid_asyncapi_3(
    validator: jsonschema.protocols.Validator,
) -> None:
    committed = asyncapi.load_committed()
    assert committed["asyncapi"] == "3.0.0"
    assert errors(validator, committed) == []


BROKEN: dict[str, Callable[[Json], None]] = {
    "channel address not a string": lambda d: d["channels"]["verdicts.ciq"].update(address=5),
    "schemaFormat not a string": lambda d: d["components"]["schemas"][
        "cn.singlewindow.events.AgencyVerdict"
    ].update(schemaFormat=42),
    "Avro type unknown": lambda d: d["components"]["schemas"][
        "cn.singlewindow.events.AgencyVerdict"
    ]["schema"].update(type="recordz"),
    "Avro name with dots": lambda d: d["components"]["schemas"][
        "cn.singlewindow.events.AgencyVerdict"
    ]["schema"].update(name="cn.singlewindow.events.AgencyVerdict"),
    "operation action": lambda d: d["operations"]["ciq.send.verdicts.ciq"].update(action="publish"),
    "cleanup.policy not a list": lambda d: d["channels"]["deadletters"]["bindings"]["kafka"][
        "topicConfiguration"
    ].update({"cleanup.policy": "delete"}),
    "server without protocol": lambda d: d["servers"]["kafka"].pop("protocol"),
    "unknown SCRAM": lambda d: d["components"]["securitySchemes"]["scram"].update(type="scramSha1"),
    "unknown message field": lambda d: d["channels"]["verdicts.ciq"]["messages"][
        "AgencyVerdict"
    ].update(body={}),
    "groupId not a schema": lambda d: d["operations"]["ciq.receive.declarations.submitted"][
        "bindings"
    ]["kafka"].update(groupId="ciq"),
}


@pytest.mark.parametrize("mutation", BROKEN.values(), ids=list(BROKEN))
def test_the_validator_refuses_a_broken_document(
    validator: jsonschema.protocols.Validator, doc: Json, mutation: Callable[[Json], None]
) -> None:
    broken = copy.deepcopy(doc)
    mutation(broken)
    assert errors(validator, broken) != []


# -- current --------------------------------------------------------------------------


def test_the_committed_document_is_the_generators_output(doc: Json) -> None:
    committed = (ROOT / "docs" / "asyncapi.json").read_text(encoding="utf-8")
    assert committed == asyncapi.render(doc), "stale: run make asyncapi"
    assert asyncapi.load_committed() == doc
    assert asyncapi.main(["--check"]) == 0


def test_check_fails_on_a_stale_file_and_writing_makes_it_current(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "asyncapi.json"
    out.write_text("{}\n")
    assert asyncapi.main(["--check", "--out", str(out)]) == 1
    assert "OUT OF DATE" in capsys.readouterr().out
    assert asyncapi.main(["--out", str(out)]) == 0
    assert asyncapi.main(["--check", "--out", str(out)]) == 0


def test_load_committed_gives_a_fresh_copy() -> None:
    first = asyncapi.load_committed()
    first["channels"].clear()
    assert asyncapi.load_committed()["channels"]


def test_the_document_depends_on_its_inputs_not_their_order() -> None:
    registry = default_registry()
    forward = asyncapi.document(CATALOG, PRINCIPALS, registry, "1")
    backward = asyncapi.document(CATALOG[::-1], PRINCIPALS[::-1], registry, "1")
    assert asyncapi.render(forward) == asyncapi.render(backward)
    verdicts = next(t for t in CATALOG if t.value_schema == "cn.singlewindow.events.AgencyVerdict")
    maritime = dataclasses.replace(verdicts, name="verdicts.maritime", writer="maritime", doc="M")
    reader = Principal("maritime", "rules at sea", reads=("declarations.submitted",),
                       writes=("verdicts.maritime",), group="maritime")  # fmt: skip
    more = asyncapi.document((*CATALOG, maritime), (*PRINCIPALS, reader), registry, "2")
    assert more["info"]["version"] == "2"
    assert more["channels"]["verdicts.maritime"]["x-writer"] == "maritime"
    assert more["operations"]["maritime.send.verdicts.maritime"]["x-writer"] is True
    assert "maritime.receive.declarations.submitted" in more["operations"]


# -- true to the catalog and the ACLs -------------------------------------------------


def test_every_catalog_topic_is_a_channel_with_its_configuration(doc: Json) -> None:
    assert list(doc["channels"]) == sorted(t.name for t in CATALOG)
    for topic in CATALOG:
        channel = doc["channels"][topic.name]
        assert channel["address"] == topic.name
        assert channel["description"] == topic.doc
        assert channel["x-writer"] == topic.writer
        assert channel["x-key"] == topic.key
        config = channel["bindings"]["kafka"]["topicConfiguration"]
        assert {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in config.items()} == (
            topic.configs()
        )


@pytest.mark.parametrize("topic", CATALOG, ids=lambda t: t.name)
def test_every_reader_receives_in_its_group_and_nobody_else(doc: Json, topic: Topic) -> None:
    receives = operations(doc, topic, "receive")
    assert set(receives) == {p.name for p in members() if topic.name in p.reads}
    for p in members():
        if p.name not in receives:
            continue
        group = receives[p.name].get("bindings", {}).get("kafka", {}).get("groupId")
        if p.group is None or topic.name in p.writes:  # no group, or restoring its own output
            assert group is None
        else:
            assert group == {"type": "string", "enum": [p.group]}


@pytest.mark.parametrize("topic", CATALOG, ids=lambda t: t.name)
def test_only_those_allowed_to_write_send_and_the_writer_is_marked(doc: Json, topic: Topic) -> None:
    sends = operations(doc, topic, "send")
    assert set(sends) == {p.name for p in members() if topic.name in p.writes}
    marked = {name for name, op in sends.items() if op["x-writer"]}
    if topic.value_schema is None:  # dead letters: "any consumer"
        assert marked == set()
    else:
        assert marked == {topic.writer}


def test_the_super_user_is_no_party_to_the_contract(doc: Json) -> None:
    supers = {p.name for p in PRINCIPALS if p.super_user}
    assert supers
    assert not supers & {op["x-principal"] for op in doc["operations"].values()}


def test_every_reference_resolves(doc: Json) -> None:
    found = list(refs(doc))
    assert len(found) > len(doc["operations"])
    for ref in found:
        resolve(doc, ref)
    for op in doc["operations"].values():  # an operation's messages are its channel's
        channel = op["channel"]["$ref"]
        assert all(m["$ref"].startswith(f"{channel}/messages/") for m in op["messages"])


# -- true to the schemas, the encoding and the signatures --------------------------------


def sample(topic: Topic) -> Event:
    """An event of the kind ``topic`` carries, as its writer would write it."""
    if topic.value_schema == "cn.singlewindow.events.AgencyVerdict":
        return factories.verdict(agency=topic.writer)  # the writer of verdicts: an agency
    events: list[Event] = [
        factories.declaration(),
        factories.result(),
        factories.join_state(),
        factories.withdrawal(),
        factories.payment(),
        factories.finding(),
        factories.gate_out(),
    ]
    return next(e for e in events if topic.value_schema == e.AVRO_NAME)


@pytest.mark.parametrize("topic", EVENT_TOPICS, ids=lambda t: t.name)
def test_each_payload_schema_is_the_registrys_and_reads_a_real_event(
    doc: Json, topic: Topic
) -> None:
    assert topic.value_schema is not None
    registry = default_registry()
    message = doc["channels"][topic.name]["messages"][topic.value_schema.rsplit(".", 1)[1]]
    payload = resolve(doc, message["payload"]["$ref"])
    assert payload["schemaFormat"] == "application/vnd.apache.avro;version=1.9.0"
    schema = parse_schema(copy.deepcopy(payload["schema"]), _write_hint=False)
    fingerprint = registry.fingerprint(topic.value_schema)
    assert canonical_fingerprint(schema) == fingerprint
    assert message["x-fingerprint"] == fingerprint.hex()

    # what the description tells a developer to do with a payload on this topic
    event = sample(topic)
    signed, wire = factories.SIGNING[signer_of(event)].sign(event, factories.T0)
    assert wire[:2] == MAGIC == b"\xc3\x01" and "`C3 01`" in doc["info"]["description"]
    assert wire[2:HEADER_LEN].hex() == message["x-fingerprint"]
    body = io.BytesIO(wire[HEADER_LEN:])
    datum = schemaless_reader(body, schema, None)
    assert body.tell() == len(wire) - HEADER_LEN
    assert datum["declaration_id"].encode() == event.key()
    assert signed.signature is not None
    assert signed_message(wire, signed.signature) == wire[: -asyncapi.SIGNATURE_SUFFIX]
    public = Ed25519PublicKey.from_public_bytes(factories.SIGNING[signer_of(event)].public_raw())
    public.verify(wire[-64:], wire[: -asyncapi.SIGNATURE_SUFFIX])  # raises if not
    assert signer_of(event) == topic.writer  # the key belongs to the channel's x-writer


def test_the_event_headers_are_the_ones_producers_write(doc: Json) -> None:
    written = [name for name, _ in event_headers("intake", factories.signed(factories.result()))]
    for topic in CATALOG:
        for name, message in doc["channels"][topic.name]["messages"].items():
            if topic.value_schema is not None and name != "Tombstone":
                assert message["headers"]["required"] == written
                documented = set(message["headers"]["properties"])
                assert (REDRIVEN_FROM in documented) == (topic.name in REDRIVABLE)


def test_the_dead_letter_headers_are_the_ones_a_letter_carries(doc: Json) -> None:
    message = doc["channels"][DEAD_LETTERS.name]["messages"]["DeadLetter"]
    documented = set(message["headers"]["properties"])
    original = [("traceparent", b"00-abc"), (b"\xff-key".decode("utf-8", "surrogateescape"), b"")]
    record = ConsumerRecord(
        "declarations.submitted", 3, 41, 0, 0, b"D" * 1000, b"v" * 5000, None, 0, 0, original
    )
    whole = deadletter.dead_letter(record, "customs", ValueError("bad"))
    cut = deadletter.dead_letter(record, "customs", ValueError("bad"), max_bytes=600)
    own = {k for letter in (whole, cut) for k, _ in letter[2] if k.startswith("sw-dlq-")}
    assert deadletter.TRUNCATED in own and deadletter.KEY_TRUNCATED in own  # both cuts seen
    assert own <= documented
    assert {k for k, _ in whole[2] if k.startswith("sw-dlq-")} - {deadletter.RAW_HEADER_KEY} == (
        set(message["headers"]["required"])
    )
    assert "x-fingerprint" not in message  # bytes: no Avro schema applies
