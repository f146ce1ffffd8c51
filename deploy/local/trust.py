"""The local stack's trust material, all of it in ``var/`` and private to this stack.

- ``var/kafka/tls/``: a CA made for this stack (``ca.crt``, which clients trust, and its key
  ``ca.key``) and the broker's certificate (``broker.pem``: its private key and the chain),
  valid for ``localhost``, ``127.0.0.1`` and ``::1``, re-issued before it expires.
- ``var/kafka/secrets.json``: one random SCRAM password per
  principal of :mod:`singlewindow.security`, made when first needed (at format time for a
  new data folder), never derived from anything, never in the code.
- ``var/credentials/<principal>.env``: what a process needs to connect as that principal,
  one ``NAME=value`` line per setting (shell-quoted only when needed), for ``. file`` in a
  shell, the launcher and pytest: ``KAFKA_BOOTSTRAP_SERVERS``, ``KAFKA_SECURITY_PROTOCOL``,
  ``KAFKA_SASL_MECHANISM``, ``KAFKA_SASL_USERNAME``, ``KAFKA_SASL_PASSWORD``,
  ``KAFKA_SSL_CAFILE``, and ``KEY_REGISTRY_FILE`` (the registry of event-signing keys, public).
- ``var/signing/``: the event-signing keys (:mod:`singlewindow.signing`): ``registry.json``,
  the key registry (public keys, versioned), and ``private/<key id>.pem``, one Ed25519 key per
  signing service, made when first needed. A service signs with the newest active key of its
  own in the registry whose private file is here (:meth:`LocalTrust.signing_env`), so a local
  rotation is ``python -m singlewindow.signing new-key <service> <new id> --rotate
  --key-file var/signing/private/<new id>.pem --registry var/signing/registry.json`` and a
  restart of that service.

Private files are written 0600 in 0700 folders, atomically.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from singlewindow.settings import Settings
from singlewindow.signing import KeyRegistry, new_key_files, signers

MECHANISM = "SCRAM-SHA-512"
PROTOCOL = "SASL_SSL"
BROKER_CN = "singlewindow-kafka-broker"  # its principal on the controller listener
BROKER_NAMES = ("localhost",)
BROKER_IPS = ("127.0.0.1", "::1")
CA_DAYS = 3650
BROKER_DAYS = 397
RENEW_BEFORE = dt.timedelta(days=30)
SETTINGS = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CAFILE",
)


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` (0600, its folder 0700) atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    tmp.replace(path)


def read_env_file(path: Path) -> dict[str, str]:
    """The ``NAME=value`` lines of a credentials file (as a POSIX shell reads them)."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        [word] = shlex.split(line)
        name, sep, value = word.partition("=")
        if not sep:
            raise ValueError(f"{path}: not a NAME=value line: {line!r}")
        env[name] = value
    return env


def settings_from_env(env: dict[str, str]) -> Settings:
    """Settings with these variables over the process's environment."""
    return Settings(**{name.lower(): value for name, value in env.items()})  # type: ignore[arg-type]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Secrets:
    """The SCRAM passwords (principal -> password)."""

    passwords: dict[str, str]

    def to_json(self) -> bytes:
        return json.dumps({"scram": self.passwords}, indent=2).encode()


@dataclass(frozen=True)
class LocalTrust:
    """The trust material of the stack whose data lives in ``var``."""

    var: Path

    @property
    def tls(self) -> Path:
        return self.var / "kafka" / "tls"

    @property
    def ca_cert(self) -> Path:
        return self.tls / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.tls / "ca.key"

    @property
    def broker_pem(self) -> Path:
        return self.tls / "broker.pem"

    @property
    def secrets_file(self) -> Path:
        return self.var / "kafka" / "secrets.json"

    @property
    def credentials(self) -> Path:
        return self.var / "credentials"

    @property
    def registry_file(self) -> Path:
        return self.var / "signing" / "registry.json"

    def private_key_file(self, key_id: str) -> Path:
        return self.var / "signing" / "private" / f"{key_id}.pem"

    def ensure_signing_keys(self) -> KeyRegistry:
        """A signing key for every service that signs, unless it has one (made now, valid from
        now); the registry of their public keys."""
        registry = KeyRegistry.load(self.registry_file) if self.registry_file.exists() else None
        for signer in signers():
            if registry is not None and self._active_key(registry, signer) is not None:
                continue
            key_id = f"{signer}-local-{secrets.token_hex(4)}"
            registry = new_key_files(
                self.registry_file, signer, key_id, self.private_key_file(key_id), rotate=True
            )
        assert registry is not None
        return registry

    def _active_key(self, registry: KeyRegistry, signer: str) -> str | None:
        """The newest open-ended, unrevoked key of ``signer`` whose private key is here."""
        usable = [
            k
            for k in registry.keys
            if k.signer == signer
            and k.valid_until is None
            and k.revoked_at is None
            and self.private_key_file(k.key_id).exists()
        ]
        return max(usable, key=lambda k: k.valid_from).key_id if usable else None

    def signing_env(self, signer: str) -> dict[str, str]:
        """``SIGNING_KEY_FILE`` and ``SIGNING_KEY_ID`` of ``signer``'s current key (nothing if
        it has none here)."""
        if not self.registry_file.exists():
            return {}
        key_id = self._active_key(KeyRegistry.load(self.registry_file), signer)
        if key_id is None:
            return {}
        return {"SIGNING_KEY_FILE": str(self.private_key_file(key_id)), "SIGNING_KEY_ID": key_id}

    def credentials_file(self, principal: str) -> Path:
        return self.credentials / f"{principal}.env"

    # -- secrets ---------------------------------------------------------------------------

    def load_secrets(self) -> Secrets | None:
        if not self.secrets_file.exists():
            return None
        raw = json.loads(self.secrets_file.read_text())
        return Secrets(dict(raw["scram"]))

    def ensure_secrets(self, principals: Iterable[str]) -> Secrets:
        """The stored secrets, with a new random password for each principal that has none."""
        known = self.load_secrets() or Secrets({})
        missing = [p for p in principals if p not in known.passwords]
        if missing or not self.secrets_file.exists():
            known = Secrets({**known.passwords, **{p: secrets.token_urlsafe(24) for p in missing}})
            write_private(self.secrets_file, known.to_json())
        return known

    # -- certificates ----------------------------------------------------------------------

    def ensure_certificates(self) -> None:
        """A CA (made once) and a broker certificate it signed that is valid a while yet."""
        self.tls.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not (self.ca_cert.exists() and self.ca_key.exists()):
            self._make_ca()
        if not self._broker_certificate_current():
            self._issue_broker_certificate()

    def _make_ca(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        name = _name(f"Single Window local CA {now:%Y-%m-%d %H:%M:%S}")
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        write_private(
            self.ca_key,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        self.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.ca_cert.chmod(0o644)
        self.broker_pem.unlink(missing_ok=True)  # signed by the CA it replaces

    def _broker_certificate_current(self) -> bool:
        if not self.broker_pem.exists():
            return False
        ca = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        leaf = x509.load_pem_x509_certificates(self.broker_pem.read_bytes())[0]
        try:
            leaf.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):  # another CA's, or a bad signature
            return False
        return leaf.not_valid_after_utc - _now() > RENEW_BEFORE

    def _issue_broker_certificate(self) -> None:
        ca_key = serialization.load_pem_private_key(self.ca_key.read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in BROKER_NAMES]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in BROKER_IPS]
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(BROKER_CN))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=BROKER_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                # server on every listener; client towards its own controller listener
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        # Unencrypted PKCS#8, in a private file: Kafka's PEM key store decrypts a key with
        # SecretKeyFactory.getInstance(<algorithm>), which Java 17 lacks for PBES2, the only
        # scheme `cryptography` writes (a password would sit beside it in server.properties).
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        chain = cert.public_bytes(serialization.Encoding.PEM) + self.ca_cert.read_bytes()
        write_private(self.broker_pem, pem + chain)

    # -- credentials -----------------------------------------------------------------------

    def write_credentials(self, bootstrap: str, secrets_: Secrets) -> None:
        """``var/credentials/<principal>.env`` for every principal with a password."""
        self.credentials.mkdir(parents=True, exist_ok=True, mode=0o700)
        for principal, password in sorted(secrets_.passwords.items()):
            values = dict(
                zip(
                    SETTINGS,
                    (bootstrap, PROTOCOL, MECHANISM, principal, password, str(self.ca_cert)),
                    strict=True,
                )
            )
            values["KEY_REGISTRY_FILE"] = str(self.registry_file)
            lines = [
                f"# Kafka credentials of the principal {principal!r} of the local stack "
                "(deploy/local/stack.py): secret, do not share",
                *(f"{name}={shlex.quote(value)}" for name, value in values.items()),
            ]
            write_private(self.credentials_file(principal), ("\n".join(lines) + "\n").encode())

    def env(self, principal: str) -> dict[str, str]:
        """The variables of ``principal``'s credentials file."""
        return read_env_file(self.credentials_file(principal))

    def settings(self, principal: str) -> Settings:
        """Settings that connect as ``principal`` (its file over the environment)."""
        return settings_from_env(self.env(principal))
