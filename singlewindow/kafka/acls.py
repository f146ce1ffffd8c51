"""ACLs and SCRAM users through the Kafka protocol, for the stack's admin (aiokafka 0.14 has
no admin calls for either).

:func:`reconcile_acls` makes the cluster's ACLs exactly the declared ones
(:func:`singlewindow.security.acls`): it creates what is missing and deletes what is not
declared, in one connection, idempotently. :func:`alter_scram_users` sets (or removes) SCRAM
credentials (``AlterUserScramCredentials``, KIP-554): the password never travels, only a
salted hash.

The requests are aiokafka's own protocol structures (``CreateAcls``, ``DescribeAcls``,
``DeleteAcls`` v1, which Kafka 2.0 to 4.x all accept); ``AlterUserScramCredentials`` v0 is
defined here from Kafka's message definition. ``tests/integration/test_security.py`` runs
them against the real broker.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import (
    CreateAclsRequest_v1,
    DeleteAclsRequest_v1,
    DescribeAclsRequest_v1,
)
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from singlewindow.security import Acl, Operation

# Kafka's codes (org.apache.kafka.common.resource / .acl)
RESOURCE_TYPES = {"topic": 2, "group": 3, "cluster": 4, "transactionalId": 5}
PATTERN_TYPES = {"literal": 3, "prefix": 4}
OPERATIONS = {
    Operation.ALL: 2,
    Operation.READ: 3,
    Operation.WRITE: 4,
    Operation.CREATE: 5,
    Operation.DELETE: 6,
    Operation.ALTER: 7,
    Operation.DESCRIBE: 8,
    Operation.CLUSTER_ACTION: 9,
    Operation.DESCRIBE_CONFIGS: 10,
    Operation.ALTER_CONFIGS: 11,
    Operation.IDEMPOTENT_WRITE: 12,
}
ANY = 1  # resource type, pattern type, operation and permission: match any
ALLOW = 3
ALL_HOSTS = "*"
SCRAM_MECHANISMS = {"SCRAM-SHA-256": (1, "sha256"), "SCRAM-SHA-512": (2, "sha512")}
SCRAM_ITERATIONS = 8192  # Kafka requires at least 4096


class AclError(RuntimeError):
    """The broker refused an ACL or SCRAM request."""


class Binding(NamedTuple):
    """An ACL as the broker holds it (Kafka's codes)."""

    resource_type: int
    resource_name: str
    pattern_type: int
    principal: str
    host: str
    operation: int
    permission: int


def binding(acl: Acl) -> Binding:
    """The broker's form of a declared ACL: ALLOW ``User:<principal>`` from any host."""
    return Binding(
        RESOURCE_TYPES[acl.resource_type],
        acl.name,
        PATTERN_TYPES[acl.pattern],
        f"User:{acl.principal}",
        ALL_HOSTS,
        OPERATIONS[acl.operation],
        ALLOW,
    )


class _DescribeAcls(Request[DescribeAclsRequest_v1]):  # type: ignore[misc]
    API_KEY = 29

    def build(self, request_struct_class: type[Any]) -> Any:
        return request_struct_class(ANY, None, ANY, None, None, ANY, ANY)  # everything


class _CreateAcls(Request[CreateAclsRequest_v1]):  # type: ignore[misc]
    API_KEY = 30

    def __init__(self, bindings: list[Binding]) -> None:
        self.bindings = bindings

    def build(self, request_struct_class: type[Any]) -> Any:
        return request_struct_class([tuple(b) for b in self.bindings])


class _DeleteAcls(Request[DeleteAclsRequest_v1]):  # type: ignore[misc]
    API_KEY = 31

    def __init__(self, bindings: list[Binding]) -> None:
        self.bindings = bindings  # each an exact filter: it matches that binding only

    def build(self, request_struct_class: type[Any]) -> Any:
        return request_struct_class([tuple(b) for b in self.bindings])


class AlterUserScramCredentialsResponse_v0(Response):  # type: ignore[misc]
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class AlterUserScramCredentialsRequest_v0(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = AlterUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(
                ("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields)
            ),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


Upsertion = tuple[str, int, int, bytes, bytes, dict[int, bytes]]
Deletion = tuple[str, int, dict[int, bytes]]


class _AlterUserScramCredentials(Request[AlterUserScramCredentialsRequest_v0]):  # type: ignore[misc]
    API_KEY = 51

    def __init__(self, deletions: list[Deletion], upsertions: list[Upsertion]) -> None:
        self.deletions, self.upsertions = deletions, upsertions

    def build(self, request_struct_class: type[Any]) -> Any:
        return request_struct_class(self.deletions, self.upsertions, {})


async def _send(admin: AIOKafkaAdminClient, request: Request) -> Any:
    return await admin._send_request(request)  # aiokafka's admin has no public call for these


async def describe_acls(admin: AIOKafkaAdminClient) -> set[Binding]:
    """Every ACL the cluster holds."""
    response = await _send(admin, _DescribeAcls())
    if response.error_code:
        raise AclError(f"DescribeAcls: error {response.error_code}: {response.error_message}")
    return {
        Binding(kind, name, pattern, *acl)
        for kind, name, pattern, rules in response.resources
        for acl in rules
    }


async def create_acls(admin: AIOKafkaAdminClient, bindings: Iterable[Binding]) -> None:
    todo = sorted(bindings)
    if not todo:
        return
    response = await _send(admin, _CreateAcls(todo))
    failed = [(b, e, m) for b, (e, m) in zip(todo, response.creation_responses, strict=True) if e]
    if failed:
        raise AclError(f"CreateAcls refused: {failed}")


async def delete_acls(admin: AIOKafkaAdminClient, bindings: Iterable[Binding]) -> None:
    todo = sorted(bindings)
    if not todo:
        return
    response = await _send(admin, _DeleteAcls(todo))
    failed = [(b, e, m) for b, (e, m, _) in zip(todo, response.filter_responses, strict=True) if e]
    if failed:
        raise AclError(f"DeleteAcls refused: {failed}")


async def reconcile_acls(
    admin: AIOKafkaAdminClient, declared: Iterable[Acl]
) -> tuple[set[Binding], set[Binding]]:
    """Make the cluster's ACLs exactly ``declared``: returns (created, deleted)."""
    wanted = {binding(acl) for acl in declared}
    held = await describe_acls(admin)
    missing, extra = wanted - held, held - wanted
    await create_acls(admin, missing)
    await delete_acls(admin, extra)
    return missing, extra


def salted_password(
    password: str, salt: bytes, iterations: int, mechanism: str = "SCRAM-SHA-512"
) -> bytes:
    """SCRAM's SaltedPassword, Hi(password, salt, i) of RFC 5802: PBKDF2 with the
    mechanism's HMAC."""
    _, digest = SCRAM_MECHANISMS[mechanism]
    return hashlib.pbkdf2_hmac(digest, password.encode(), salt, iterations)


async def alter_scram_users(
    admin: AIOKafkaAdminClient,
    upsert: Mapping[str, str] | None = None,
    delete: Iterable[str] = (),
    mechanism: str = "SCRAM-SHA-512",
    iterations: int = SCRAM_ITERATIONS,
) -> None:
    """Create or replace the SCRAM credentials of the users in ``upsert`` (name ->
    password) and remove those of the users in ``delete``, for ``mechanism``."""
    code, _ = SCRAM_MECHANISMS[mechanism]
    upsertions: list[Upsertion] = []
    for name, password in sorted((upsert or {}).items()):
        salt = secrets.token_bytes(32)
        salted = salted_password(password, salt, iterations, mechanism)
        upsertions.append((name, code, iterations, salt, salted, {}))
    deletions: list[Deletion] = [(name, code, {}) for name in sorted(delete)]
    if not (upsertions or deletions):
        return
    response = await _send(admin, _AlterUserScramCredentials(deletions, upsertions))
    failed = [(user, e, m) for user, e, m, _ in response.results if e]
    if failed:
        raise AclError(f"AlterUserScramCredentials refused: {failed}")
