"""Test issuers for the intake: key pairs generated when a test runs, never constants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from services.intake.auth import JwtVerifier, StaticKeys

ISSUER = "https://issuer.test/realm"
AUDIENCE = "singlewindow-intake-test"
USCC_A = "91350100M000100Y43"  # the declarant of tests.unit.test_intake_schema.valid_body
USCC_B = "91110000600037341L"
USCC_C = "91440300MA5FXXXXXM"


def _new_key(algorithm: str) -> tuple[Any, dict[str, Any]]:
    """A fresh private key for ``algorithm`` and its public JWK."""
    if algorithm == "EdDSA":
        private: Any = Ed25519PrivateKey.generate()
        jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    elif algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
        jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    elif algorithm == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    else:
        raise ValueError(algorithm)
    return private, jwk


class TestIssuer:
    """An issuer with a freshly generated key pair: mints tokens, gives its JWKS."""

    __test__ = False  # not a test class

    def __init__(self, algorithm: str = "EdDSA", kid: str = "test-key-1") -> None:
        self.algorithm, self.kid = algorithm, kid
        self.private, jwk = _new_key(algorithm)
        self.jwk = {**jwk, "kid": kid, "alg": algorithm, "use": "sig"}

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk]}

    def claims(
        self, sub: str | None = "trader-a", usccs: Any = (USCC_A,), **changes: Any
    ) -> dict[str, Any]:
        """Valid claims for ``sub``; ``changes`` override (None removes a claim, a string
        ``usccs`` stays a string)."""
        now = datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "usccs": list(usccs) if isinstance(usccs, tuple | list) else usccs,
            "iat": now,
            "exp": now + timedelta(hours=1),
        }
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not None}

    def token(
        self,
        sub: str | None = "trader-a",
        usccs: Any = (USCC_A,),
        *,
        headers: dict[str, Any] | None = None,
        **changes: Any,
    ) -> str:
        """A signed token (``changes`` alter the claims, ``headers`` the JOSE header)."""
        header = {"kid": self.kid, **(headers or {})}
        return jwt.encode(
            self.claims(sub, usccs, **changes), self.private, self.algorithm, headers=header
        )

    def auth(self, sub: str = "trader-a", usccs: tuple[str, ...] = (USCC_A,)) -> dict[str, str]:
        """An Authorization header for ``sub`` acting for ``usccs``."""
        return {"Authorization": f"Bearer {self.token(sub, usccs)}"}

    def verifier(self, **options: Any) -> JwtVerifier:
        """A verifier trusting this issuer only."""
        return JwtVerifier(StaticKeys(self.jwks), issuer=ISSUER, audience=AUDIENCE, **options)
