"""Process settings, read from the environment (pydantic-settings).

Every service reads ``KAFKA_BOOTSTRAP_SERVERS`` and ``MONGODB_URL``; nothing else is required.
A secured Kafka adds ``KAFKA_SECURITY_PROTOCOL`` (``SASL_SSL``), ``KAFKA_SASL_MECHANISM``,
``KAFKA_SASL_USERNAME``, ``KAFKA_SASL_PASSWORD`` and ``KAFKA_SSL_CAFILE``: each process its
own principal (the local stack writes them to ``var/credentials/<service>.env``). Every Kafka
client takes them from :func:`singlewindow.kafka.options.kafka_options`.

Each service's own settings (its metrics port, the aggregator's deadline, the intake's host
and port...) are a :class:`ServiceSettings` subclass read from ``<SERVICE>_<NAME>``
variables, e.g. ``AGGREGATOR_DEADLINE_SECONDS``; any service, a new agency included, has
``<SERVICE>_METRICS_PORT`` through :func:`service_settings`. A process reads them once, at
its start (:func:`read_settings`: an invalid value is a :class:`SettingsError` naming the
variable; ``singlewindow.runtime.own_settings`` exits with it).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Literal, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, create_model, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
Port = Annotated[int, Field(ge=0, le=65535)]
S = TypeVar("S", bound=BaseSettings)


class Settings(BaseSettings):
    """Settings shared by every process of the platform."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field("localhost:9092", description="Kafka bootstrap servers")
    mongodb_url: str = Field("mongodb://localhost:27017/", description="MongoDB-protocol database")
    mongodb_database: str = Field("singlewindow", description="database name for the read model")
    topic_partitions: int = Field(
        6, ge=1, description="partitions of every declaration-keyed topic"
    )
    topic_replication_factor: int = Field(1, ge=1, description="replication factor of new topics")
    kafka_request_timeout_ms: int = Field(15_000, ge=1000, description="Kafka request timeout")
    dead_letter_max_bytes: int = Field(
        1_000_000,
        ge=16_384,
        description="largest dead letter written; a larger original is truncated and hashed "
        "(below the broker's message.max.bytes, 1,048,588 by default)",
    )
    kafka_session_timeout_ms: int = Field(
        6_000, ge=6000, description="consumer group session: how soon a dead member is replaced"
    )
    kafka_security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="how clients talk to Kafka: SASL_SSL on a secured cluster"
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        "SCRAM-SHA-512", description="the SASL mechanism (SASL_SSL, SASL_PLAINTEXT)"
    )
    kafka_sasl_username: str | None = Field(None, description="this process's Kafka principal")
    kafka_sasl_password: SecretStr | None = Field(None, description="its password")
    kafka_ssl_cafile: Path | None = Field(
        None,
        description="PEM file of the CA(s) that sign the brokers' certificates "
        "(SSL, SASL_SSL); unset: the system's trusted CAs",
    )

    signing_key_file: Path | None = Field(
        None, description="this service's private event-signing key (PEM, Ed25519)"
    )
    signing_key_id: str | None = Field(None, description="that key's id in the key registry")
    key_registry_file: Path | None = Field(
        None, description="the operators' registry of event-signing public keys (JSON)"
    )

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        return self


@cache
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()


class SettingsError(ValueError):
    """A setting in the environment is invalid: the message names each variable and what is
    wrong with it (never its value, which may be a secret)."""


def read_settings(cls: type[S], env_prefix: str | None = None) -> S:
    """``cls`` read from the environment (with ``env_prefix`` instead of its own, if given),
    or SettingsError naming the variables of the invalid values."""
    prefix = cls.model_config.get("env_prefix", "") if env_prefix is None else env_prefix
    try:
        return cls() if env_prefix is None else cls(_env_prefix=env_prefix)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = error["loc"]
            where = f"{prefix}{loc[0]}".upper() if loc else cls.__name__
            problems.append(f"{where}: {error['msg']}")
        raise SettingsError("; ".join(problems)) from None


class ServiceSettings(BaseSettings):
    """The settings of one service process, each read from ``<prefix><NAME>``: a subclass
    sets ``model_config = SettingsConfigDict(env_prefix="AGGREGATOR_")`` and adds its own
    fields (and its own metrics port default)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    metrics_port: Port = Field(0, description="port of this process's /metrics (0: none)")

    @classmethod
    def read(cls, env_prefix: str | None = None) -> Self:
        """These settings from the environment, or SettingsError (:func:`read_settings`)."""
        return read_settings(cls, env_prefix)


@cache
def _with_metrics_port(default: int) -> type[ServiceSettings]:
    port = Field(default, description="port of this process's /metrics (0: none)")
    return create_model("ServiceSettings", __base__=ServiceSettings, metrics_port=(Port, port))


def service_settings(service: str, default_metrics_port: int = 0) -> ServiceSettings:
    """The settings every service has, for any service name: ``<SERVICE>_METRICS_PORT``
    (``default_metrics_port`` when unset), e.g. ``VET_METRICS_PORT`` for an agency ``vet``.
    SettingsError when it is not a port number."""
    return _with_metrics_port(default_metrics_port).read(f"{service.upper()}_")


class LogSettings(BaseSettings):
    """How a process writes its log: ``LOG_FORMAT=text`` (the default: a line a human reads)
    or ``json`` (a JSON object a line, for a log collector; see :mod:`singlewindow.logs`)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    log_format: Literal["text", "json"] = Field("text", description="text or json")


class TracingSettings(BaseSettings):
    """Where a process's OpenTelemetry spans go (:mod:`singlewindow.tracing`): over OTLP/HTTP
    when the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set (the
    exporter reads the other standard ``OTEL_EXPORTER_OTLP_*`` variables itself), to a local
    JSON-lines file when ``OTEL_TRACES_FILE`` is set, else nowhere, at no cost."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    otel_exporter_otlp_endpoint: str | None = Field(None, description="OTLP/HTTP collector")
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        None, description="OTLP/HTTP traces URL (overrides the endpoint's /v1/traces)"
    )
    otel_traces_file: str | None = Field(
        None,
        description="JSON-lines file the spans are appended to; '{service}' in it is replaced "
        "by the process's name (one file a process)",
    )
    otel_sdk_disabled: bool = Field(False, description="the standard switch: no spans at all")

    @property
    def otlp(self) -> bool:
        return bool(self.otel_exporter_otlp_endpoint or self.otel_exporter_otlp_traces_endpoint)

    @property
    def otlp_traces_url(self) -> str | None:
        """Where spans are posted: the traces endpoint as given, else the endpoint's
        ``/v1/traces`` (as the OTLP exporter specification says)."""
        if self.otel_exporter_otlp_traces_endpoint:
            return self.otel_exporter_otlp_traces_endpoint
        if self.otel_exporter_otlp_endpoint:
            return self.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        return None
