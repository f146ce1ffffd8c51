"""Webhook signatures (Stripe's scheme) and the secrets derived under the webhook keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.webhooks.signing import (
    BadSignature,
    WebhookKeyError,
    ensure_key_file,
    load_keys,
    parse_keys,
    signature_header,
    verify,
)

BODY = b'{"delivery_id":"DLV-1","status":"RELEASED"}'
SECRET = "whsec_0123456789abcdef"


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body_under_the_secret() -> None:
    """The vector, computed by another implementation (OpenSSL)::

        $ printf '%s' '1700000000.{"delivery_id":"DLV-1","status":"RELEASED"}' \\
            | openssl dgst -sha256 -hmac 'whsec_0123456789abcdef'
        SHA2-256(stdin)= 52822ecb346538ddc0255cfdbcc204830302ef70b62b54d2b4998f9fc6589d90
    """
    expected = "52822ecb346538ddc0255cfdbcc204830302ef70b62b54d2b4998f9fc6589d90"
    assert signature_header(SECRET, 1_700_000_000, BODY) == f"t=1700000000,v1={expected}"


def test_a_receiver_verifies_the_header_over_the_bytes_it_received() -> None:
    header = signature_header(SECRET, 1_700_000_000, BODY)
    assert verify(SECRET, header, BODY, now=1_700_000_100) == 1_700_000_000
    # several v1 (a secret being rotated) and spaces are accepted
    assert verify(SECRET, f"t=1700000000, v1=00ff, {header.split(',')[1]}", BODY, 1_700_000_000)


@pytest.mark.parametrize(
    ("header", "body", "secret", "now"),
    [
        (None, BODY + b" ", SECRET, 1_700_000_000),  # the body changed
        (None, BODY, "whsec_other", 1_700_000_000),  # another secret
        (None, BODY, SECRET, 1_700_000_301),  # replayed later than the tolerance
        ("v1=52822ecb", BODY, SECRET, 1_700_000_000),  # no timestamp
        ("t=1700000000", BODY, SECRET, 1_700_000_000),  # no signature
        ("t=17e8,v1=00", BODY, SECRET, 1_700_000_000),  # not a number
    ],
    ids=["body", "secret", "stale", "no-t", "no-v1", "bad-t"],
)
def test_what_a_receiver_refuses(header: str | None, body: bytes, secret: str, now: int) -> None:
    header = header or signature_header(SECRET, 1_700_000_000, BODY)
    with pytest.raises(BadSignature):
        verify(secret, header, body, now)


def test_the_secret_is_derived_from_the_key_the_webhook_id_and_its_nonce() -> None:
    """``HMAC-SHA256(key, "sw-webhook-secret\\0" + webhook_id + "\\0" + nonce)``, computed by
    OpenSSL for key 0x11 * 32, webhook WH-1, nonce 00 01 02::

        $ printf 'sw-webhook-secret\\x00WH-1\\x00\\x00\\x01\\x02' > msg
        $ openssl dgst -sha256 -mac HMAC -macopt hexkey:$(printf '11%.0s' {1..32}) msg
        HMAC-SHA2-256(msg)= 8a02dc40422f94974fa2b74aa3410249cbca5f200278bcc5532be1c92a4b4041
    """
    keys = parse_keys("v1:" + "11" * 32, "test")
    expected = "8a02dc40422f94974fa2b74aa3410249cbca5f200278bcc5532be1c92a4b4041"
    assert keys.secret("v1", "WH-1", bytes([0, 1, 2])) == "whsec_" + expected
    assert keys.secret("v1", "WH-2", bytes([0, 1, 2])) != keys.secret(
        "v1", "WH-1", bytes([0, 1, 2])
    )


def test_the_keyring_newest_entry_makes_new_secrets_and_older_ones_still_sign() -> None:
    keys = parse_keys(f"# rotated\nold:{'11' * 32}\n\nnew:{'22' * 32}  # since May\n", "ring")
    assert keys.current == "new"
    assert keys.secret("old", "WH-1", b"n") != keys.secret("new", "WH-1", b"n")
    assert "11" * 32 not in repr(keys)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# nothing",
        "v1:" + "11" * 31,
        "v1:xyz",
        "v1" + "11" * 32,
        f"a:{'11' * 32}\na:{'22' * 32}",
    ],
    ids=["empty", "comment", "short", "not-hex", "no-colon", "twice"],
)
def test_a_malformed_keyring_is_refused_without_showing_a_key(text: str) -> None:
    with pytest.raises(WebhookKeyError) as refused:
        parse_keys(text, "ring")
    assert "11" * 16 not in str(refused.value)


def test_a_development_keyring_is_made_once_private(tmp_path: Path) -> None:
    path = ensure_key_file(tmp_path / "secrets" / "webhook.keys")
    first = load_keys(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_keys(ensure_key_file(path)).keys == first.keys


def test_locally_the_intake_and_the_delivery_service_share_one_keyring(tmp_path: Path) -> None:
    """What the local launcher gives each: the same development keyring, and receivers on
    loopback allowed (tests and local runs listen on http://127.0.0.1:<port>)."""
    from services.intake.config import IntakeSettings
    from services.webhooks.config import WebhooksSettings, local_webhook_env

    path = tmp_path / "webhook.keys"
    intake = IntakeSettings.model_validate(
        {k.removeprefix("INTAKE_").lower(): v for k, v in local_webhook_env("intake", path).items()}
    )
    delivery = WebhooksSettings.model_validate(
        {
            k.removeprefix("WEBHOOKS_").lower(): v
            for k, v in local_webhook_env("webhooks", path).items()
        }
    )
    assert intake.webhook_keys_file == delivery.keys_file == path.resolve()
    assert intake.webhook_allow_loopback and delivery.allow_loopback
    assert not (intake.webhook_allow_private or delivery.allow_private)
