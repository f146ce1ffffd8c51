"""The development issuer: keys created once, tokens the local intake accepts, the local
intake's environment, the command line behind ``make token``."""

from __future__ import annotations

import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest

from services.intake import devissuer
from services.intake.api import Exposure, IntakeService, create_app
from services.intake.auth import FileKeys, JwtVerifier
from services.intake.config import IntakeSettings, build_verifier, id_secret
from services.intake.ports import InMemoryPublisher, InMemoryReadModel
from tests.unit.intake_tokens import USCC_A, USCC_B
from tests.unit.test_intake_schema import valid_body


def local_verifier(directory: Path) -> JwtVerifier:
    return JwtVerifier(
        FileKeys(directory / devissuer.JWKS),
        issuer=devissuer.ISSUER,
        audience=devissuer.AUDIENCE,
    )


def test_the_key_pair_is_created_once(tmp_path: Path) -> None:
    folder = tmp_path / "credentials" / "issuer"
    first = devissuer.ensure_keys(folder)
    again = devissuer.ensure_keys(folder)
    assert first.private_bytes_raw() == again.private_bytes_raw()
    private, jwks = folder / devissuer.PRIVATE_KEY, folder / "jwks.json"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == stat.S_IMODE(folder.parent.stat().st_mode)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(jwks.stat().st_mode) == 0o644
    assert "PRIVATE" not in jwks.read_text() and '"d"' not in jwks.read_text()


def test_concurrent_first_uses_agree_on_one_key(tmp_path: Path) -> None:
    start = threading.Barrier(8)
    keys: list[bytes] = []

    def create() -> None:
        start.wait()
        keys.append(devissuer.ensure_keys(tmp_path).private_bytes_raw())

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_kid_is_the_rfc_7638_thumbprint() -> None:
    # RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert devissuer.thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


async def test_a_minted_token_is_valid_for_an_hour(tmp_path: Path) -> None:
    token = devissuer.mint("broker-7", [USCC_A, USCC_B], directory=tmp_path)
    principal = await local_verifier(tmp_path).verify(token)
    assert principal.subject == "broker-7" and principal.usccs == {USCC_A, USCC_B}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"


async def test_an_old_token_is_expired(tmp_path: Path) -> None:
    then = datetime.now(UTC) - timedelta(hours=2)
    token = devissuer.mint("t", [USCC_A], directory=tmp_path, now=then)
    with pytest.raises(Exception, match="expired"):
        await local_verifier(tmp_path).verify(token)


@pytest.mark.parametrize(
    ("subject", "usccs"), [("t", ["91350100M000100Y44"]), ("t", []), ("", [USCC_A])]
)
def test_nothing_the_intake_would_refuse_is_minted(
    tmp_path: Path, subject: str, usccs: list[str]
) -> None:
    with pytest.raises(ValueError):
        devissuer.mint(subject, usccs, directory=tmp_path)


def test_bearer_is_an_authorization_header(tmp_path: Path) -> None:
    header = devissuer.bearer("t", [USCC_A], directory=tmp_path)
    assert header["Authorization"].startswith("Bearer ey")


async def test_the_local_environment_starts_an_intake_that_accepts_its_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = devissuer.local_intake_env(tmp_path / "issuer", tmp_path / "intake" / "id-secret")
    assert env["INTAKE_PUBLIC_DOCS"] == env["INTAKE_PUBLIC_METRICS"] == "true"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    own = IntakeSettings()
    publisher = InMemoryPublisher()
    app = create_app(
        IntakeService(
            publisher, InMemoryReadModel(), verifier=build_verifier(own), id_secret=id_secret(own)
        ),
        Exposure(docs=own.public_docs, metrics=own.public_metrics),
    )
    headers = devissuer.bearer("local", [USCC_A], directory=tmp_path / "issuer")
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        accepted = await client.post("/v1/declarations", json=valid_body(), headers=headers)
        docs = await client.get("/docs")
    assert accepted.status_code == 202 and docs.status_code == 200
    assert len(publisher.events) == 1
    secret = (tmp_path / "intake" / "id-secret").read_bytes()
    assert len(secret.strip()) == 64
    assert devissuer.local_intake_env(tmp_path / "issuer", tmp_path / "intake" / "id-secret")
    assert (tmp_path / "intake" / "id-secret").read_bytes() == secret  # created once


def test_the_command_line_prints_a_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert devissuer.main(["--dir", str(tmp_path), "token", "--uscc", f"{USCC_A},{USCC_B}"]) == 0
    token = capsys.readouterr().out.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["usccs"] == [USCC_A, USCC_B] and claims["sub"] == f"local-trader-{USCC_A}"
    assert devissuer.main(["--dir", str(tmp_path), "token", "--uscc", USCC_A, "--sub", "me"]) == 0
    token = capsys.readouterr().out.strip()
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "me"


@pytest.mark.parametrize("uscc", ["", "91350100M000100Y44"])
def test_the_command_line_refuses_a_missing_or_wrong_uscc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], uscc: str
) -> None:
    assert devissuer.main(["--dir", str(tmp_path), "token", "--uscc", uscc]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err


def test_the_command_line_prints_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "intake" / "id-secret"
    assert devissuer.main(["--dir", str(tmp_path), "env", "--id-secret", str(secret)]) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert lines == {
        "INTAKE_JWT_ISSUER": devissuer.ISSUER,
        "INTAKE_JWT_AUDIENCE": devissuer.AUDIENCE,
        "INTAKE_JWKS_FILE": str(tmp_path / "jwks.json"),
        "INTAKE_ID_SECRET_FILE": str(secret),
        "INTAKE_PUBLIC_DOCS": "true",
        "INTAKE_PUBLIC_METRICS": "true",
        "INTAKE_DEV_SIGNIN": "true",
    }
    assert secret.exists()
