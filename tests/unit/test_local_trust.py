"""The local stack's trust material (deploy/local/trust.py) and how every Kafka client takes
its settings (singlewindow/kafka/options.py)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import SecretStr, ValidationError

import deploy.local.components as components
from deploy.local.launcher import service_credentials
from deploy.local.trust import BROKER_CN, SETTINGS, LocalTrust, read_env_file
from singlewindow.kafka.options import kafka_options, ssl_context
from singlewindow.security import principals
from singlewindow.settings import Settings

NAMES = [p.name for p in principals()]


@pytest.fixture
def trust(tmp_path: Path) -> LocalTrust:
    return LocalTrust(tmp_path / "var with space")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_principal_gets_its_own_random_password_kept_across_calls(trust: LocalTrust) -> None:
    first = trust.ensure_secrets(NAMES[:-1])
    assert set(first.passwords) == set(NAMES[:-1])
    assert len(set(first.passwords.values())) == len(first.passwords)
    assert all(len(pw) >= 32 for pw in first.passwords.values())
    again = trust.ensure_secrets(NAMES)  # one principal more: only it gets a new password
    assert {n: again.passwords[n] for n in first.passwords} == first.passwords
    assert NAMES[-1] in again.passwords
    assert mode(trust.secrets_file) == 0o600
    other = LocalTrust(trust.var.with_name("another")).ensure_secrets(NAMES)
    assert not set(other.passwords.values()) & set(again.passwords.values())


def test_the_broker_certificate_is_signed_by_the_stacks_ca_for_localhost(
    trust: LocalTrust,
) -> None:
    trust.ensure_certificates()
    ca = x509.load_pem_x509_certificate(trust.ca_cert.read_bytes())
    leaf, chained_ca = x509.load_pem_x509_certificates(trust.broker_pem.read_bytes())
    leaf.verify_directly_issued_by(ca)
    assert chained_ca == ca
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == BROKER_CN
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usage)
    assert b"PRIVATE KEY" in trust.broker_pem.read_bytes()
    assert mode(trust.broker_pem) == 0o600 and mode(trust.ca_key) == 0o600
    assert mode(trust.tls) == 0o700


def test_certificates_are_made_once_and_reissued_for_a_new_ca(trust: LocalTrust) -> None:
    trust.ensure_certificates()
    broker, ca = trust.broker_pem.read_bytes(), trust.ca_cert.read_bytes()
    trust.ensure_certificates()
    assert (trust.broker_pem.read_bytes(), trust.ca_cert.read_bytes()) == (broker, ca)
    trust.ca_key.unlink()  # a new CA: the broker's certificate must be its
    trust.ensure_certificates()
    new_ca = x509.load_pem_x509_certificate(trust.ca_cert.read_bytes())
    leaf = x509.load_pem_x509_certificates(trust.broker_pem.read_bytes())[0]
    leaf.verify_directly_issued_by(new_ca)


def test_a_credentials_file_has_every_setting_and_a_shell_reads_it_as_python_does(
    trust: LocalTrust,
) -> None:
    secrets_ = trust.ensure_secrets(NAMES)
    trust.write_credentials("localhost:29092", secrets_)
    for name in NAMES:
        path = trust.credentials_file(name)
        env = read_env_file(path)
        assert list(env) == [*SETTINGS, "KEY_REGISTRY_FILE"]
        assert env["KEY_REGISTRY_FILE"] == str(trust.registry_file)  # public: no secret in it
        assert env["KAFKA_SASL_USERNAME"] == name
        assert env["KAFKA_SASL_PASSWORD"] == secrets_.passwords[name]
        assert env["KAFKA_SSL_CAFILE"] == str(trust.ca_cert)  # a path with a space in it
        assert mode(path) == 0o600
    shell = subprocess.run(
        ["sh", "-c", 'set -a; . "$1"; env', "sh", str(trust.credentials_file("intake"))],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    ).stdout.splitlines()
    assert {
        k: v
        for k, _, v in (line.partition("=") for line in shell)
        if k in (*SETTINGS, "KEY_REGISTRY_FILE")
    } == (read_env_file(trust.credentials_file("intake")))
    settings = trust.settings("customs")
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_username == "customs"
    assert settings.kafka_ssl_cafile == trust.ca_cert


def test_the_launcher_gives_each_service_its_own_credentials_for_the_local_broker_only(
    trust: LocalTrust, monkeypatch: pytest.MonkeyPatch
) -> None:
    import deploy.local.components as components

    monkeypatch.setattr(components, "VAR", trust.var)
    trust.write_credentials("localhost:29092", trust.ensure_secrets(NAMES))
    own = service_credentials("customs", {})
    assert own["KAFKA_SASL_USERNAME"] == "customs"
    assert service_credentials("customs", {"KAFKA_BOOTSTRAP_SERVERS": "localhost:29092"}) == own
    assert service_credentials("customs", {"KAFKA_BOOTSTRAP_SERVERS": "kafka.example:9093"}) == {}
    assert service_credentials("nobody", {}) == {}


def test_kafka_options_plaintext_has_no_security() -> None:
    options = kafka_options(
        Settings(kafka_bootstrap_servers="h:1", kafka_security_protocol="PLAINTEXT")
    )
    assert options == {"bootstrap_servers": "h:1", "security_protocol": "PLAINTEXT"}


def test_kafka_options_sasl_ssl_share_one_tls_context_per_ca_file(trust: LocalTrust) -> None:
    trust.ensure_certificates()
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="customs",
        kafka_sasl_password=SecretStr("pw"),
        kafka_ssl_cafile=trust.ca_cert,
    )
    options = kafka_options(settings)
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("customs", "pw")
    assert options["ssl_context"] is kafka_options(settings)["ssl_context"]  # built once
    assert options["ssl_context"].check_hostname
    assert options["ssl_context"] is not ssl_context(None)


def test_sasl_without_a_username_and_password_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="KAFKA_SASL_USERNAME"):
        Settings(
            kafka_security_protocol="SASL_SSL", kafka_sasl_username=None, kafka_sasl_password=None
        )


def test_a_data_folder_from_before_the_secured_stack_is_moved_aside_only_if_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import deploy.local.components as components

    monkeypatch.setattr(components, "VAR", tmp_path)
    kafka = components.Kafka()
    kafka.data.mkdir(parents=True)
    (kafka.data / "meta.properties").write_text("cluster.id=old\n")
    kafka.properties.write_text(f"# Something else\nlog.dirs={kafka.data}\n")
    with pytest.raises(RuntimeError, match="did not make"):
        kafka._retire_unsecured_data()
    assert (kafka.data / "meta.properties").exists()

    old_template = "# Local single-node Kafka: KRaft combined mode (broker and controller).\n"
    kafka.properties.write_text(f"{old_template}listeners=PLAINTEXT://x\nlog.dirs={kafka.data}\n")
    assert kafka.outdated()
    kafka._retire_unsecured_data()
    assert not kafka.data.exists()
    [aside] = (tmp_path / "kafka").glob("data.unsecured-*")
    assert (aside / "meta.properties").read_text() == "cluster.id=old\n"

    kafka.data.mkdir()  # formatted secured: left alone
    (kafka.data / "meta.properties").write_text("cluster.id=new\n")
    kafka.marker.write_text('{"scram_users": []}')
    kafka._retire_unsecured_data()
    assert not kafka.outdated() and (kafka.data / "meta.properties").exists()


class _Flaky(components.Component):
    """A server that listens at once, but is broken on its first launch only."""

    name = "flaky"

    def __init__(self, port: int) -> None:
        self.port, self.launches, self.checks = port, 0, 0

    def command(self) -> list[str]:
        self.launches += 1
        serve = (
            "import socket,time;s=socket.socket();"
            "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
            f"s.bind(('127.0.0.1',{self.port}));s.listen();time.sleep(600)"
        )
        return [sys.executable, "-c", serve]

    def ready(self) -> bool:
        return self.launches > 1

    def broken(self) -> str | None:
        self.checks += 1
        return "refuses its own admin" if self.launches == 1 else None

    def diagnosis(self) -> str:
        return " (its log says why)"


@pytest.fixture
def free_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """A free loopback port, for a server of a stack in ``tmp_path`` whose broken state is
    acted on at once."""
    monkeypatch.setattr(components, "VAR", tmp_path)
    monkeypatch.setattr(components, "BROKEN_FOR_S", 0.0)
    monkeypatch.setattr(components, "BROKEN_CHECK_S", 0.1)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_server_that_comes_up_broken_is_restarted_saying_why(
    free_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    server = _Flaky(free_port)
    try:
        server.start()
        assert server.launches == 2 and server.running()
        said = capsys.readouterr().out
        assert "flaky refuses its own admin for 0s; restarting it (its log says why)" in said
    finally:
        server.kill()


class _Mendable(_Flaky):
    """Broken on its first launch, mended in place (no restart)."""

    mended = False

    def ready(self) -> bool:
        return self.mended

    def broken(self) -> str | None:
        return None if self.mended else "refuses its own admin"

    def repair(self, why: str) -> bool:
        self.mended = True
        return True


def test_a_server_that_can_be_mended_in_place_is_not_restarted(free_port: int) -> None:
    server = _Mendable(free_port)
    try:
        server.start()
        assert server.launches == 1 and server.mended and server.running()
    finally:
        server.kill()


def test_a_cluster_id_never_starts_with_a_dash_that_a_command_line_reads_as_an_option() -> None:
    # 0xF8 is 111110.. in bits: its first base64 digit is 62, "-" in the URL-safe alphabet
    draws = iter([b"\xf8" + b"\x00" * 15, b"\x04" + b"\x00" * 15])
    assert components.new_cluster_id(lambda n: next(draws)[:n]) == "BAAAAAAAAAAAAAAAAAAAAA"
