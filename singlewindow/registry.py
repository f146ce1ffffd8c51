"""The agency registry: the one declaration of the agencies that take part in the platform.

Everything about an agency that the platform needs derives from its entry: its verdict
topic (:func:`singlewindow.topics.catalog`), its Kafka principal and ACLs
(:func:`singlewindow.security.principals`), its consumer group, the local launcher and
``make run``, the Kubernetes manifests, the demo's columns and who may sign its verdicts.
An agency joins by a package of its own (its rules, its reference data and a ``__main__``
that calls :func:`singlewindow.agency.run_agency`), one entry here and a routing-table
version that routes declarations to it; no other code changes.

The registry is a TOML file: ``AGENCY_REGISTRY_FILE``, else the platform's own
``agencies.toml`` (in the source tree, or the copy packaged with the SDK)::

    [[agency]]
    code = "vet"                      # the agency's code in every event (see AgencyCode)
    name = "Veterinary and Food Safety Authority"
    name_zh = "兽医和食品安全局"
    module = "vet_agency"             # python -m vet_agency runs its service
    metrics_port = 9106
    rules = "vet_agency.rules:assess"                   # for auditors: recompute a verdict
    reference = "vet_agency.reference:load_reference"   # (its reference, by version)

``topic`` (``verdicts.<code>``), ``group`` and ``principal`` (both ``<code>``) may be set
when a deployment needs other names. The order of the entries is the order agencies are
listed in (the demo's columns, the launcher); the join orders decisions by the declaration's
own ``required_agencies``, so a result never depends on the registry it is computed with.

``secret_files`` are the secrets its service reads from files, each named by an environment
variable; on Kubernetes (``deploy/k8s/manifests.py``) a file is the key ``key`` of the Secret
``secret``, mounted at ``/etc/singlewindow/secrets/<secret>/<key>``::

    secret_files = [
        { env = "VET_LAB_KEYS_FILE", secret = "vet-lab-keys", key = "keys" },
    ]
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from singlewindow.events import RESERVED_NAMES, AgencyCode

FILE_ENV = "AGENCY_REGISTRY_FILE"
# the topics of the platform's own (singlewindow.topics, which derives from this registry)
PLATFORM_TOPICS = frozenset(
    {
        "declarations.submitted",
        "declarations.withdrawn",
        "payments.confirmed",
        "inspections.findings",
        "clearance.results",
        "gate.out",
        "aggregator.join-state",
        "deadletters",
    }
)
_MODULE = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
_OBJECT = rf"^({_MODULE}:[A-Za-z_][A-Za-z0-9_]*)?$"


class SecretFile(BaseModel):
    """A secret an agency's service reads from a file: ``env`` names the file, which is the
    key ``key`` of the (Kubernetes) Secret ``secret``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        max_length=128,
        description="the environment variable that names the file",
    )
    secret: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=63,
        description="the Secret holding it (a DNS label: also the name of its volume)",
    )
    key: str = Field(
        pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$",
        max_length=253,
        description="its key in the Secret, and the file's name",
    )


class AgencyEntry(BaseModel):
    """One participating agency."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: AgencyCode
    name: str = Field(min_length=1, max_length=200)
    name_zh: str = Field("", max_length=100)
    module: str = Field(
        pattern=rf"^{_MODULE}$",
        description="the Python module whose __main__ runs the agency's service",
    )
    metrics_port: int = Field(ge=1024, le=65535, description="default port of its /metrics")
    rules: str = Field(
        "",
        pattern=_OBJECT,
        description="``module:function``, the pure ``assess(declaration, reference, now)`` "
        "auditors recompute its verdicts with",
    )
    reference: str = Field(
        "", pattern=_OBJECT, description="``module:function`` loading its reference by version"
    )
    recompute: str = Field(
        "",
        pattern=_OBJECT,
        description="``module:function(keyring, declaration, verdict)`` for an agency whose "
        "verdicts need the auditor's secrets (a keyed random sample); instead of rules",
    )
    topic: str = Field("", pattern=r"^([A-Za-z0-9._-]{1,249})?$")
    group: str = Field("", pattern=r"^([A-Za-z0-9._-]{1,249})?$")
    principal: str = Field("", pattern=r"^([a-z][a-z0-9.-]{0,62})?$")
    secret_files: tuple[SecretFile, ...] = Field(
        (), description="secrets its service reads from files (see :class:`SecretFile`)"
    )

    @model_validator(mode="after")
    def _defaults(self) -> AgencyEntry:
        envs = [f.env for f in self.secret_files]
        twice = sorted({e for e in envs if envs.count(e) > 1})
        if twice:
            raise ValueError(f"{self.code}: two secret_files name the same env: {twice}")
        # frozen: defaults derived from the code are set once, here
        for field, value in (
            ("topic", f"verdicts.{self.code}"),
            ("group", self.code),
            ("principal", self.code),
        ):
            if not getattr(self, field):
                object.__setattr__(self, field, value)
        # the platform's own principals, groups and topics are never an agency's
        taken = {*RESERVED_NAMES, *PLATFORM_TOPICS, "deadletters-redrive"}
        for field in ("topic", "group", "principal"):
            if getattr(self, field) in taken:
                raise ValueError(f"{self.code}: {field} {getattr(self, field)!r} is the platform's")
        return self


class AgencyRegistry(BaseModel):
    """The participating agencies, in the order they are listed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agencies: tuple[AgencyEntry, ...] = Field(min_length=1, alias="agency")

    @model_validator(mode="after")
    def _unique(self) -> AgencyRegistry:
        for field in ("code", "topic", "group", "principal", "metrics_port"):
            values = [getattr(a, field) for a in self.agencies]
            twice = sorted({str(v) for v in values if values.count(v) > 1})
            if twice:
                raise ValueError(f"two agencies share a {field}: {', '.join(twice)}")
        names = [(a.code, n) for a in self.agencies for n in {a.code, a.group, a.principal}]
        for code, name in names:
            others = {c for c, n in names if n == name and c != code}
            if others:
                raise ValueError(f"{name!r} names both {code} and {', '.join(sorted(others))}")
        return self

    def __iter__(self) -> Iterator[AgencyEntry]:  # type: ignore[override]
        return iter(self.agencies)

    def __contains__(self, code: object) -> bool:
        return any(a.code == code for a in self.agencies)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(a.code for a in self.agencies)

    def get(self, code: str) -> AgencyEntry:
        """The entry of ``code``; KeyError (naming the registered ones) for any other."""
        for entry in self.agencies:
            if entry.code == code:
                return entry
        raise KeyError(f"{code!r} is not a registered agency (registered: {self.codes})")


def default_file() -> Path:
    """``agencies.toml`` of the source tree, or the copy packaged into the SDK's wheel."""
    source = Path(__file__).resolve().parents[1] / "agencies.toml"
    if source.is_file():
        return source
    return Path(str(resources.files("singlewindow") / "_agencies.toml"))


def load_registry(path: Path) -> AgencyRegistry:
    """Read and check a registry file (ValueError naming the file if it is malformed)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return AgencyRegistry.model_validate(data)
    except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
        raise ValueError(f"agency registry {path}: {exc}") from exc


@cache
def _registry_at(path: str) -> AgencyRegistry:
    return load_registry(Path(path))


def agency_registry() -> AgencyRegistry:
    """The registry of this process: ``AGENCY_REGISTRY_FILE``, else :func:`default_file`."""
    return _registry_at(os.environ.get(FILE_ENV) or str(default_file()))
