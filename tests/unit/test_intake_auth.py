"""Bearer token verification, the issuer's key sources, idempotent ids and the intake's trust
settings (without which it refuses to start)."""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest

from services.intake.auth import (
    FileKeys,
    InvalidToken,
    JwtVerifier,
    KeysUnavailable,
    StaticKeys,
    UrlKeys,
    parse_jwks,
    principal_of,
)
from services.intake.config import ConfigError, IntakeSettings, build_verifier, id_secret
from services.intake.ids import KeyedIds, scoped_key
from tests.processes import run_module
from tests.unit.intake_tokens import AUDIENCE, ISSUER, USCC_A, USCC_B, TestIssuer


def verifier_for(keys: Any, **options: Any) -> JwtVerifier:
    return JwtVerifier(keys, issuer=ISSUER, audience=AUDIENCE, **options)


# --- algorithms ----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256", "RS256"])
async def test_each_allowed_algorithm_verifies(algorithm: str) -> None:
    issuer = TestIssuer(algorithm)
    principal = await issuer.verifier().verify(issuer.token("broker", (USCC_A, USCC_B)))
    assert principal.subject == "broker" and principal.usccs == {USCC_A, USCC_B}
    assert principal.acts_for(USCC_A) and not principal.acts_for("91440300MA5FXXXXXM")


@pytest.mark.parametrize("algorithms", [["HS256"], ["none"], ["EdDSA", "HS512"], []])
def test_symmetric_or_no_algorithms_cannot_be_configured(algorithms: list[str]) -> None:
    with pytest.raises(ValueError):
        TestIssuer().verifier(algorithms=algorithms)


async def test_an_algorithm_outside_the_configured_list_is_refused() -> None:
    issuer = TestIssuer("EdDSA")
    with pytest.raises(InvalidToken, match="algorithm"):
        await issuer.verifier(algorithms=["ES256"]).verify(issuer.token())


async def test_the_token_algorithm_must_be_the_keys() -> None:
    ec, ed = TestIssuer("ES256", kid="k"), TestIssuer("EdDSA", kid="k")
    verifier = verifier_for(StaticKeys(ed.jwks))  # the issuer's key with kid k is Ed25519
    with pytest.raises(InvalidToken, match="algorithm"):
        await verifier.verify(ec.token())


async def test_a_shared_secret_in_the_key_set_is_never_used() -> None:
    secret = "s" * 64
    oct_key = {"kty": "oct", "k": jwt.utils.base64url_encode(secret.encode()).decode()}
    issuer = TestIssuer()
    keys = StaticKeys({"keys": [{**oct_key, "kid": "hs"}, issuer.jwk]})
    token = jwt.encode(issuer.claims(), secret, "HS256", headers={"kid": "hs"})
    with pytest.raises(InvalidToken):
        await verifier_for(keys).verify(token)
    with pytest.raises(ValueError, match="no signing key"):
        parse_jwks({"keys": [oct_key]})


# --- keys ----------------------------------------------------------------------------------


async def test_a_one_key_set_needs_no_kid_a_larger_one_does() -> None:
    one, two = TestIssuer(), TestIssuer(kid="test-key-2")
    token = jwt.encode(one.claims(), one.private, "EdDSA")  # no kid
    assert (await verifier_for(StaticKeys(one.jwks)).verify(token)).subject == "trader-a"
    both = StaticKeys({"keys": [one.jwk, two.jwk]})
    with pytest.raises(InvalidToken, match="kid"):
        await verifier_for(both).verify(token)
    assert (await verifier_for(both).verify(two.token())).subject == "trader-a"


@pytest.mark.parametrize("document", [[], {"keys": []}, {"keys": [{"kty": "nope"}]}, "x"])
def test_an_unusable_key_set_is_refused(document: object) -> None:
    with pytest.raises(ValueError):
        parse_jwks(document)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_jwks_file_is_reread_when_rotated_and_a_broken_rewrite_is_ignored(
    tmp_path: Path,
) -> None:
    old, new = TestIssuer(kid="2026-01"), TestIssuer(kid="2026-02")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(old.jwks))
    clock = Clock()
    verifier = verifier_for(FileKeys(path, clock=clock))
    assert await verifier.verify(old.token())
    path.write_text(json.dumps({"keys": [old.jwk, new.jwk]}))
    os.utime(path, ns=(1, 1))  # a distinct modification time whatever the file system
    clock.now += 2
    assert await verifier.verify(new.token())
    path.write_text("{ broken")
    clock.now += 2
    assert await verifier.verify(new.token())  # the last good set stays


def test_a_missing_jwks_file_is_an_error_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        FileKeys(tmp_path / "absent.json")


async def test_a_jwks_url_is_fetched_once_and_forged_kids_do_not_hammer_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issuer = TestIssuer()
    keys = UrlKeys("https://issuer.test/jwks")
    fetched: list[float] = []

    def fetch() -> dict[str, Any]:  # what PyJWKClient.fetch_data does, without the network
        fetched.append(time.monotonic())
        assert keys.client.jwk_set_cache is not None
        keys.client.jwk_set_cache.put(issuer.jwks)
        keys.client._last_successful_fetch = time.monotonic()
        return issuer.jwks

    monkeypatch.setattr(keys.client, "fetch_data", fetch)
    verifier = verifier_for(keys)
    for _ in range(3):
        assert await verifier.verify(issuer.token())
    for n in range(5):  # unknown kids within the cool-down: no refetch
        with pytest.raises(InvalidToken, match="unknown key"):
            await verifier.verify(issuer.token(headers={"kid": f"forged-{n}"}))
    assert len(fetched) == 1


async def test_an_unreachable_jwks_url_is_keys_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = UrlKeys("https://issuer.test/jwks")

    def fail() -> None:
        raise jwt.PyJWKClientConnectionError("connection refused")

    monkeypatch.setattr(keys.client, "fetch_data", fail)
    with pytest.raises(KeysUnavailable):
        await verifier_for(keys).verify(TestIssuer().token())


def test_a_jwks_url_must_be_http() -> None:
    with pytest.raises(ValueError):
        UrlKeys("file:///etc/passwd")


# --- claims --------------------------------------------------------------------------------


def test_a_broker_may_name_up_to_1000_usccs() -> None:
    assert len(principal_of({"sub": "b", "usccs": [USCC_A] * 1000}).usccs) == 1
    with pytest.raises(InvalidToken):
        principal_of({"sub": "b", "usccs": [USCC_A] * 1001})


def test_the_uscc_claim_name_is_configurable() -> None:
    claims = {"sub": "b", "https://sw.example/usccs": [USCC_A]}
    assert principal_of(claims, "https://sw.example/usccs").usccs == {USCC_A}
    with pytest.raises(InvalidToken):
        principal_of(claims)


# --- ids -----------------------------------------------------------------------------------


def test_scoped_keys_are_unambiguous() -> None:
    assert scoped_key("a", "b c") != scoped_key("a b", "c")
    assert scoped_key("trader", "k") != "k"


def test_keyed_ids_depend_on_subject_key_and_secret() -> None:
    ids = KeyedIds(os.urandom(32))
    a = ids.declaration_id("trader-a", "k")
    assert a == ids.declaration_id("trader-a", "k")
    assert a != ids.declaration_id("trader-b", "k") != ids.declaration_id("trader-a", "k2")
    assert a != KeyedIds(os.urandom(32)).declaration_id("trader-a", "k")
    assert uuid.UUID(ids.event_id("trader-a", "k")).version == 4
    with pytest.raises(ValueError):
        KeyedIds(b"short")


# --- settings: no issuer, no start ------------------------------------------------------------


def settings(**values: Any) -> IntakeSettings:
    return IntakeSettings.model_validate(values)


def test_no_issuer_at_all_is_refused_with_what_to_set() -> None:
    with pytest.raises(ConfigError) as caught:
        build_verifier(settings())
    message = str(caught.value)
    assert "refuses to start" in message
    assert "INTAKE_JWT_ISSUER" in message and "INTAKE_JWKS_FILE" in message


@pytest.mark.parametrize(
    ("values", "missing"),
    [
        ({"jwt_issuer": ISSUER}, "INTAKE_JWT_AUDIENCE"),
        ({"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}, "INTAKE_JWKS_URL"),
        ({"jwks_url": "https://issuer.test/jwks"}, "INTAKE_JWT_ISSUER"),
    ],
)
def test_a_partly_configured_issuer_is_refused(values: dict[str, Any], missing: str) -> None:
    with pytest.raises(ConfigError, match=missing):
        build_verifier(settings(**values))


def test_a_configured_issuer_builds_a_verifier(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(TestIssuer().jwks))
    trust = {"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
    assert build_verifier(settings(**trust, jwks_file=path)).issuer == ISSUER
    url = "https://issuer.test/jwks"
    with pytest.raises(ConfigError, match="not both"):
        build_verifier(settings(**trust, jwks_file=path, jwks_url=url))
    with pytest.raises(ConfigError, match="ALGORITHMS"):
        build_verifier(settings(**trust, jwks_file=path, jwt_algorithms="HS256"))


def test_the_id_secret_comes_from_a_file_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "id-secret"
    path.write_bytes(b"x" * 64 + b"\n")
    assert id_secret(settings(id_secret_file=path)) == b"x" * 64
    assert id_secret(settings(id_secret="y" * 32)) == b"y" * 32
    for wrong, words in [
        ({}, "no id secret"),
        ({"id_secret": "short"}, "at least 32"),
        ({"id_secret": "y" * 32, "id_secret_file": path}, "not both"),
        ({"id_secret_file": tmp_path / "absent"}, "cannot read"),
    ]:
        with pytest.raises(ConfigError, match=words):
            id_secret(settings(**wrong))


def test_the_intake_process_refuses_to_start_without_an_issuer() -> None:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("INTAKE_", "KAFKA_", "MONGODB_"))
    }
    # should the check ever be skipped: an ephemeral port and unreachable back ends
    env.update(
        INTAKE_PORT="0", KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9", MONGODB_URL="mongodb://127.0.0.1:9/"
    )
    done = run_module("services.intake", env)
    assert done.returncode == 2, done.stderr
    assert "refusing to start" in done.stderr and "INTAKE_JWT_ISSUER" in done.stderr


class CountingKeys(StaticKeys):
    """A fixed key set that counts how often a signature had to be checked."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        super().__init__(jwks)
        self.lookups = 0

    async def signing_key(self, kid: str | None) -> jwt.PyJWK:
        self.lookups += 1
        return await super().signing_key(kid)


async def test_a_verified_token_is_remembered_for_a_minute_never_past_its_expiry() -> None:
    issuer, clock = TestIssuer(), Clock()
    clock.now = time.time()
    keys = CountingKeys(issuer.jwks)
    verifier = JwtVerifier(keys, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    token = issuer.token()  # valid for an hour
    first = await verifier.verify(token)
    assert await verifier.verify(token) == first and keys.lookups == 1
    clock.now += 61  # past the minute: checked again
    assert await verifier.verify(token) == first and keys.lookups == 2
    short = issuer.token(exp=int(clock.now) + 5)
    await verifier.verify(short)
    await verifier.verify(short)
    assert keys.lookups == 3
    clock.now += 6  # past its exp, though within the minute: checked again
    with contextlib.suppress(InvalidToken):
        await verifier.verify(short)
    assert keys.lookups == 4
