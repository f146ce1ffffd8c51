"""Each service's own settings: the environment variable names the launcher, the Procfile and
the Kubernetes manifests set, their defaults, and invalid values refused naming the variable."""

from __future__ import annotations

import os

import pytest

from deploy.local.launcher import services
from services.aggregator.config import AggregatorSettings
from services.bank.config import BankSettings
from services.gate.config import GateSettings
from services.inspection.config import InspectionSettings
from services.intake.config import IntakeSettings
from services.projector.config import ProjectorSettings
from services.webhooks.config import WebhooksSettings
from singlewindow.settings import (
    ServiceSettings,
    Settings,
    SettingsError,
    read_settings,
    service_settings,
)
from tests.processes import run_module

AGENCY_PORTS = {"customs": 9101, "ciq": 9102, "port": 9103}
OWN: dict[str, type[ServiceSettings]] = {
    "aggregator": AggregatorSettings,
    "projector": ProjectorSettings,
    "webhooks": WebhooksSettings,
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No service setting from the environment the tests run in."""
    for name in os.environ:
        prefixes = ("INTAKE_", "AGGREGATOR_", "PROJECTOR_", "VET_", "WEBHOOKS_")
        if name.startswith(prefixes) or name.endswith("_METRICS_PORT"):
            monkeypatch.delenv(name)


# --- any service's metrics port -----------------------------------------------------------


def test_any_service_reads_its_metrics_port(monkeypatch: pytest.MonkeyPatch) -> None:
    assert service_settings("vet", 9106).metrics_port == 9106  # unset: the default
    monkeypatch.setenv("VET_METRICS_PORT", "19106")
    assert service_settings("vet", 9106).metrics_port == 19106
    assert service_settings("customs", 9101).metrics_port == 9101  # another service's own
    assert service_settings("vet").metrics_port == 19106


def test_the_port_agency_reads_port_metrics_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT_METRICS_PORT", "19103")
    monkeypatch.setenv("METRICS_PORT", "1")  # no prefix: nobody's
    assert service_settings("port", 9103).metrics_port == 19103


def test_every_metrics_port_the_launcher_sets_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """``deploy.local.launcher`` sets ``f"{service.upper()}_METRICS_PORT"`` for each service
    but the intake: each reads its own."""
    ports = {s: 19100 + i for i, s in enumerate(services()) if s != "intake"}
    for service, port in ports.items():
        monkeypatch.setenv(f"{service.upper()}_METRICS_PORT", str(port))
    for service, port in ports.items():
        if service in OWN:
            assert OWN[service].read().metrics_port == port
        elif service == "bank":
            assert read_settings(BankSettings).metrics_port == port
        elif service == "inspection":
            assert read_settings(InspectionSettings).metrics_port == port
        elif service == "gate":
            assert read_settings(GateSettings).metrics_port == port
        else:
            assert service_settings(service, AGENCY_PORTS[service]).metrics_port == port


@pytest.mark.parametrize("value", ["x", "-1", "65536", "9101.5", ""])
def test_a_metrics_port_that_is_no_port_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("VET_METRICS_PORT", value)
    with pytest.raises(SettingsError, match=r"^VET_METRICS_PORT: "):
        service_settings("vet", 9106)


def test_a_refusal_never_shows_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value set by mistake in the wrong variable may be a secret: logs must not keep it."""
    monkeypatch.setenv("INTAKE_RATE_BURST", "hunter2-password")
    with pytest.raises(SettingsError) as refused:
        read_settings(IntakeSettings)
    assert "INTAKE_RATE_BURST" in str(refused.value) and "hunter2" not in str(refused.value)


def test_defaults_are_per_call_not_shared() -> None:
    assert service_settings("ciq", 9102).metrics_port == 9102
    assert service_settings("customs", 9101).metrics_port == 9101
    assert ServiceSettings.read().metrics_port == 0


# --- the aggregator ---------------------------------------------------------------------


def test_the_aggregator_defaults() -> None:
    own = AggregatorSettings.read()
    assert (own.deadline_seconds, own.metrics_port) == (120.0, 9104)
    assert own.retention.days == 60  # a notice is due in 15 days; late interest after
    assert own.inspection_deadline.days == 2  # an order waits two days for its findings


def test_the_aggregator_reads_its_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATOR_DEADLINE_SECONDS", "5")
    monkeypatch.setenv("AGGREGATOR_RETENTION_SECONDS", "3600")
    monkeypatch.setenv("AGGREGATOR_INSPECTION_DEADLINE_SECONDS", "7200")
    monkeypatch.setenv("AGGREGATOR_METRICS_PORT", "19104")
    monkeypatch.setenv("DEADLINE_SECONDS", "1")  # no prefix: nobody's
    own = AggregatorSettings.read()
    assert own.deadline.total_seconds() == 5 and own.retention.total_seconds() == 3600
    assert own.metrics_port == 19104 and own.inspection_deadline.total_seconds() == 7200


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AGGREGATOR_DEADLINE_SECONDS", "0"),
        ("AGGREGATOR_DEADLINE_SECONDS", "-5"),
        ("AGGREGATOR_DEADLINE_SECONDS", "soon"),
        ("AGGREGATOR_DEADLINE_SECONDS", "nan"),
        ("AGGREGATOR_DEADLINE_SECONDS", "inf"),
        ("AGGREGATOR_INSPECTION_DEADLINE_SECONDS", "0"),
        ("AGGREGATOR_INSPECTION_DEADLINE_SECONDS", "nan"),
        ("AGGREGATOR_INSPECTION_DEADLINE_SECONDS", "inf"),
        ("AGGREGATOR_RETENTION_SECONDS", "0"),
        ("AGGREGATOR_RETENTION_SECONDS", "1e12"),
        ("AGGREGATOR_METRICS_PORT", "99999"),
    ],
)
def test_the_aggregator_refuses_invalid_values(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=rf"^{name}: "):
        AggregatorSettings.read()


def test_every_invalid_value_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATOR_DEADLINE_SECONDS", "0")
    monkeypatch.setenv("AGGREGATOR_METRICS_PORT", "port")
    with pytest.raises(SettingsError) as refused:
        AggregatorSettings.read()
    message = str(refused.value)
    assert "AGGREGATOR_DEADLINE_SECONDS: " in message and "AGGREGATOR_METRICS_PORT: " in message


# --- the projector ----------------------------------------------------------------------


def test_the_projector_defaults_and_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    own = ProjectorSettings.read()
    assert (own.fetch_max_wait_ms, own.metrics_port) == (250, 9105)
    monkeypatch.setenv("PROJECTOR_FETCH_MAX_WAIT_MS", "0")
    monkeypatch.setenv("PROJECTOR_METRICS_PORT", "0")
    assert ProjectorSettings.read() == ProjectorSettings(fetch_max_wait_ms=0, metrics_port=0)
    monkeypatch.setenv("PROJECTOR_FETCH_MAX_WAIT_MS", "5001")
    with pytest.raises(SettingsError, match=r"^PROJECTOR_FETCH_MAX_WAIT_MS: .*5000"):
        ProjectorSettings.read()


# --- the intake -------------------------------------------------------------------------


def test_the_intake_reads_its_host_and_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    own = read_settings(IntakeSettings)
    assert (own.host, own.port, own.metrics_port) == ("127.0.0.1", 8000, 0)
    monkeypatch.setenv("INTAKE_HOST", "0.0.0.0")
    monkeypatch.setenv("INTAKE_PORT", "0")  # an ephemeral port: what the tests use
    monkeypatch.setenv("INTAKE_METRICS_PORT", "9100")
    own = read_settings(IntakeSettings)
    assert (own.host, own.port, own.metrics_port) == ("0.0.0.0", 0, 9100)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INTAKE_PORT", "http"),
        ("INTAKE_PORT", "65536"),
        ("INTAKE_METRICS_PORT", "-1"),
        ("INTAKE_RATE_PER_SECOND", "0"),
        ("INTAKE_RATE_BURST", "lots"),
        ("INTAKE_MAX_SUBMISSIONS", "0"),
    ],
)
def test_the_intake_refuses_invalid_values(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=rf"^{name}: "):
        read_settings(IntakeSettings)


def test_a_rule_across_settings_is_named_by_its_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.delenv("KAFKA_SASL_USERNAME", raising=False)
    with pytest.raises(SettingsError, match=r"^Settings: .*KAFKA_SASL_USERNAME"):
        read_settings(Settings)


# --- a process with an invalid setting ----------------------------------------------------


@pytest.mark.parametrize(
    ("module", "name", "value"),
    [
        ("services.aggregator", "AGGREGATOR_DEADLINE_SECONDS", "0"),
        ("services.intake", "INTAKE_PORT", "http"),
    ],
)
def test_a_process_with_an_invalid_setting_refuses_to_start_naming_it(
    module: str, name: str, value: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTAKE_", "AGGREGATOR_"))}
    env.update({name: value, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"})
    env["MONGODB_URL"] = "mongodb://127.0.0.1:9/"  # should it start anyway: nothing there
    done = run_module(module, env)
    assert done.returncode == 2, done.stderr
    assert "refusing to start" in done.stderr and f"{name}: " in done.stderr
