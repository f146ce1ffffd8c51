"""Who is calling: the intake as an OAuth 2.0 resource server (bearer JWTs, RFC 6750).

A request carries ``Authorization: Bearer <JWT>`` issued by the configured issuer. The
token is accepted only if

- its header names an allowed algorithm (asymmetric only: ``none`` and ``HS*`` never) that is
  also the algorithm of the issuer's key with the token's ``kid`` (a key set of one key may be
  used without ``kid``);
- its signature verifies with that key, taken from the issuer's JWKS (a file, or a URL read
  through ``PyJWKClient`` with a cache and a cool-down between refreshes);
- ``iss`` and ``aud`` are the configured ones and ``exp`` is in the future (``nbf`` and
  ``iat``, when present, are checked too), with a small leeway for clock skew;
- ``sub`` names the caller (1-255 characters, no control characters) and the USCC claim
  (``usccs`` by default) lists the 1-1000 Unified Social Credit Codes it may act for: its own,
  or, for a customs broker, its principals' under power of attorney.

The result is a :class:`Principal`. Everything else answers 401 with a
``WWW-Authenticate: Bearer`` challenge (:func:`challenge`); an issuer whose keys cannot be
fetched is the intake's problem, not the caller's: 503.

What the claims name is a function of the verified claims: :class:`ClaimsVerifier` takes it
(``principal``), :class:`JwtVerifier` is the traders' (:func:`principal_of`). The inspection
station (``services.inspection``) verifies the same issuer's tokens with
:func:`inspector_of`: an :class:`Inspector` is ``sub`` and the registered ``agency`` it
inspects for, and lists no USCCs. Each refuses the other's tokens: an inspector's has no
USCCs, so the intake and the bank refuse it; a trader's names no agency, so the station does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

from services.intake.errors import Problem
from singlewindow.events import RESERVED_NAMES
from singlewindow.identifiers import InvalidIdentifier, validate_uscc
from singlewindow.registry import AgencyRegistry, agency_registry

log = logging.getLogger(__name__)

# Asymmetric algorithms only: a shared-secret (HS*) or unsigned (none) token is never accepted.
SUPPORTED_ALGORITHMS = frozenset({"EdDSA", "ES256", "ES384", "RS256", "PS256"})
DEFAULT_ALGORITHMS = ("EdDSA", "ES256", "RS256")
REALM = "singlewindow-intake"
MAX_TOKEN_CHARS = 8192
MAX_USCCS = 1000
_SUBJECT = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,255}")


class InvalidToken(Exception):
    """The token is missing, malformed, not from the issuer, expired or otherwise unusable.

    ``str(exc)`` is a fixed, client-safe description (it goes into the challenge)."""


class KeysUnavailable(Exception):
    """The issuer's keys could not be read: no token can be verified for now."""


@dataclass(frozen=True)
class Principal:
    """A verified caller: its subject and the USCCs it may act for."""

    subject: str
    usccs: frozenset[str]

    def acts_for(self, uscc: str) -> bool:
        """Whether the caller may lodge and read declarations of the declarant ``uscc``."""
        return uscc in self.usccs


@dataclass(frozen=True)
class Inspector:
    """A verified inspector: its subject and the (registered) agency it inspects for."""

    subject: str
    agency: str


P = TypeVar("P")
P_co = TypeVar("P_co", covariant=True)


class Verifier(Protocol):
    async def verify(self, token: str) -> Principal:
        """The principal a bearer token proves; InvalidToken or KeysUnavailable otherwise."""
        ...


class TokenVerifier(Protocol[P_co]):
    """A verifier of any kind of principal (:class:`Verifier` is the traders')."""

    async def verify(self, token: str) -> P_co:
        """What a bearer token proves; InvalidToken or KeysUnavailable otherwise."""
        ...


class KeySource(Protocol):
    async def signing_key(self, kid: str | None) -> PyJWK:
        """The issuer's signing key ``kid``; InvalidToken if unknown, KeysUnavailable if the
        keys cannot be read."""
        ...


def challenge(error: str | None = None, description: str = "") -> dict[str, str]:
    """A ``WWW-Authenticate`` header: RFC 6750 section 3 (no error code when no token came)."""
    value = f'Bearer realm="{REALM}"'
    if error:
        value += f', error="{error}"'
    if description:
        value += f', error_description="{description}"'
    return {"WWW-Authenticate": value}


def unauthorized(description: str | None = None) -> Problem:
    """401: no token (``description`` None) or an invalid one (RFC 6750 ``invalid_token``)."""
    if description is None:
        detail = "send a bearer token: Authorization: Bearer <token>"
        return Problem(401, detail, kind="unauthenticated", headers=challenge())
    headers = challenge("invalid_token", description)
    return Problem(401, description, kind="invalid-token", headers=headers)


def signing_keys(keys: Iterable[PyJWK]) -> list[PyJWK]:
    """The keys usable for verifying signatures (``use`` absent or ``sig``) with an allowed
    algorithm."""
    return [
        key
        for key in keys
        if key.public_key_use in (None, "sig") and key.algorithm_name in SUPPORTED_ALGORITHMS
    ]


def select_key(keys: Sequence[PyJWK], kid: str | None) -> PyJWK:
    """The key with this ``kid``; without ``kid``, the only key of a one-key set."""
    if kid is None:
        if len(keys) == 1:
            return keys[0]
        raise InvalidToken("the token names no key (kid)")
    for key in keys:
        if key.key_id == kid:
            return key
    raise InvalidToken("the token is signed with an unknown key")


def parse_jwks(document: object) -> list[PyJWK]:
    """The signing keys of a JWKS document (a JSON object with ``keys``); ValueError if none."""
    if not isinstance(document, Mapping):
        raise ValueError("a JWKS must be a JSON object with a 'keys' list")
    try:
        keys = signing_keys(PyJWKSet.from_dict(dict(document)))
    except jwt.PyJWTError as exc:
        raise ValueError(f"unusable JWKS: {exc}") from None
    if not keys:
        raise ValueError(f"the JWKS has no signing key for {sorted(SUPPORTED_ALGORITHMS)}")
    return keys


class StaticKeys:
    """A fixed key set (tests; an issuer whose keys never rotate)."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self.keys = parse_jwks(jwks)

    async def signing_key(self, kid: str | None) -> PyJWK:
        return select_key(self.keys, kid)


class FileKeys:
    """A JWKS file, read again when it changes (checked at most every ``check_every`` s), so
    that keys can be rotated by rewriting the file. A broken rewrite keeps the last good set."""

    def __init__(
        self,
        path: Path,
        *,
        check_every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path, self.check_every, self.clock = path, check_every, clock
        self.stamp = self._stamp()
        self.keys = self._read()  # at start, a missing or broken file is an error (ValueError)
        self.checked = clock()

    def _stamp(self) -> tuple[int, int]:
        try:
            stat = os.stat(self.path)
        except OSError as exc:
            raise ValueError(f"cannot read the JWKS file {self.path}: {exc}") from None
        return stat.st_mtime_ns, stat.st_size

    def _read(self) -> list[PyJWK]:
        try:
            document = json.loads(self.path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the JWKS file {self.path}: {exc}") from None
        return parse_jwks(document)

    def _refresh(self) -> None:
        """Re-read the file if it changed since the last look (rate-limited)."""
        now = self.clock()
        if now - self.checked < self.check_every:
            return
        self.checked = now
        try:
            stamp = self._stamp()
            if stamp != self.stamp:
                self.keys, self.stamp = self._read(), stamp
                log.info("issuer keys reloaded from %s", self.path)
        except ValueError as exc:
            log.warning("keeping the previous issuer keys: %s", exc)

    async def signing_key(self, kid: str | None) -> PyJWK:
        self._refresh()
        return select_key(self.keys, kid)


class UrlKeys:
    """The issuer's JWKS URL, through ``PyJWKClient``: the set is cached (``lifespan`` s) and
    an unknown ``kid`` refetches it at most once per ``cooldown`` s, so forged kids cannot
    hammer the issuer. Fetches run in a thread: the event loop never blocks on the network."""

    def __init__(
        self, url: str, *, timeout: float = 5.0, lifespan: float = 300, cooldown: float = 30
    ) -> None:
        try:
            self.client = PyJWKClient(
                url,
                cache_jwk_set=True,
                lifespan=lifespan,
                timeout=timeout,
                cooldown_duration=cooldown,
            )
        except jwt.PyJWKClientError as exc:
            raise ValueError(f"unusable JWKS URL {url!r}: {exc}") from None

    def _key(self, kid: str | None) -> PyJWK:
        if kid is None:
            return select_key(signing_keys(self.client.get_signing_keys()), None)
        key = self.client.get_signing_key(kid)
        return select_key(signing_keys([key]), kid)

    async def signing_key(self, kid: str | None) -> PyJWK:
        try:
            return await asyncio.to_thread(self._key, kid)
        except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError) as exc:
            log.warning("issuer keys unavailable: %s", exc)
            raise KeysUnavailable(str(exc)) from exc
        except jwt.PyJWKClientError:
            raise InvalidToken("the token is signed with an unknown key") from None


# PyJWT's exceptions, as fixed client-safe descriptions (no echo of token content).
_DESCRIPTIONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.InvalidAudienceError, "the token is not meant for this service (aud)"),
    (jwt.InvalidIssuerError, "the token is not from the accepted issuer (iss)"),
    (jwt.MissingRequiredClaimError, "the token lacks a required claim (exp, iss, aud, sub)"),
    (jwt.InvalidAlgorithmError, "the token algorithm is not accepted"),
    (jwt.InvalidSignatureError, "the token signature is invalid"),
)


def describe(exc: Exception) -> str:
    """A client-safe description of a PyJWT error."""
    for kind, description in _DESCRIPTIONS:
        if isinstance(exc, kind):
            return description
    return "the token is invalid"


class ClaimsVerifier(Generic[P]):
    """Verifies bearer JWTs of one issuer (see the module docstring for every check); what
    the verified claims name is ``principal(claims)`` (InvalidToken if they name nothing)."""

    def __init__(
        self,
        keys: KeySource,
        *,
        principal: Callable[[Mapping[str, Any]], P],
        issuer: str,
        audience: str,
        algorithms: Collection[str] = DEFAULT_ALGORITHMS,
        leeway: float = 30.0,
        cache_s: float = 60.0,
        cache_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        refused = set(algorithms) - SUPPORTED_ALGORITHMS
        if refused or not algorithms:
            raise ValueError(
                f"algorithms {sorted(refused) or '(none)'} refused; "
                f"choose among {sorted(SUPPORTED_ALGORITHMS)}"
            )
        if not issuer or not audience:
            raise ValueError("an issuer and an audience are required")
        self.keys, self.issuer, self.audience = keys, issuer, audience
        self.algorithms, self.leeway, self.principal = frozenset(algorithms), leeway, principal
        # token -> (principal, until when): a client sends the same token with every request,
        # and checking its signature was about a tenth of a request's CPU. At most
        # ``cache_s`` (a key withdrawn from the issuer's set stops counting by then) and never
        # past ``exp``.
        self.cache_s, self.cache_entries, self.clock = cache_s, cache_entries, clock
        self._verified: dict[str, tuple[P, float]] = {}

    async def verify(self, token: str) -> P:
        """The principal the token proves, or InvalidToken / KeysUnavailable."""
        known = self._verified.get(token)
        if known is not None:
            if self.clock() < known[1]:
                return known[0]
            del self._verified[token]
        principal, expires = await self._verify(token)
        if self.cache_s > 0:
            if len(self._verified) >= self.cache_entries:
                del self._verified[next(iter(self._verified))]  # the oldest entry
            self._verified[token] = (principal, min(expires, self.clock() + self.cache_s))
        return principal

    async def _verify(self, token: str) -> tuple[P, float]:
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("the token is too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the token is not a JWT") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in self.algorithms:
            raise InvalidToken("the token algorithm is not accepted")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("the token is invalid")
        key = await self.keys.signing_key(kid)
        if key.algorithm_name != algorithm:
            raise InvalidToken("the token algorithm is not accepted")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={
                    "require": ["exp", "iss", "aud", "sub"],
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(describe(exc)) from None
        # compared, never converted: a huge integer exp must not overflow a float
        return self.principal(claims), claims["exp"]


class JwtVerifier(ClaimsVerifier[Principal]):
    """Verifies traders' bearer JWTs: their ``sub`` and the USCCs (``uscc_claim``) they act
    for (:func:`principal_of`)."""

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        algorithms: Collection[str] = DEFAULT_ALGORITHMS,
        leeway: float = 30.0,
        uscc_claim: str = "usccs",
        cache_s: float = 60.0,
        cache_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            keys,
            principal=lambda claims: principal_of(claims, uscc_claim),
            issuer=issuer,
            audience=audience,
            algorithms=algorithms,
            leeway=leeway,
            cache_s=cache_s,
            cache_entries=cache_entries,
            clock=clock,
        )
        self.uscc_claim = uscc_claim


def subject_of(claims: Mapping[str, Any]) -> str:
    """The caller named by verified claims (``sub``: 1-255 characters, no control ones)."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
        raise InvalidToken("the token subject (sub) is unusable")
    return subject


def principal_of(claims: Mapping[str, Any], uscc_claim: str = "usccs") -> Principal:
    """The principal named by verified claims: ``sub`` and the list of USCCs."""
    subject = subject_of(claims)
    usccs = claims.get(uscc_claim)
    if not isinstance(usccs, list) or not 1 <= len(usccs) <= MAX_USCCS:
        raise InvalidToken(f"the token must list the USCCs it acts for ({uscc_claim})")
    for uscc in usccs:
        try:
            validate_uscc(uscc)
        except InvalidIdentifier:
            raise InvalidToken(f"the token lists an invalid USCC ({uscc_claim})") from None
    return Principal(subject=subject, usccs=frozenset(usccs))


def inspector_of(
    claims: Mapping[str, Any],
    agency_claim: str = "agency",
    uscc_claim: str = "usccs",
    registry: AgencyRegistry | None = None,
) -> Inspector:
    """The inspector named by verified claims: ``sub`` and the registered agency
    (``agency_claim``) it inspects for. A token that lists USCCs (``uscc_claim``) is a
    trader's, never an inspector's, whatever else it names."""
    subject = subject_of(claims)
    agency = claims.get(agency_claim)
    registered = agency_registry() if registry is None else registry
    if not isinstance(agency, str) or agency in RESERVED_NAMES or agency not in registered:
        description = f"the token must name the registered agency it inspects for ({agency_claim})"
        raise InvalidToken(description)
    if uscc_claim in claims:
        raise InvalidToken(f"an inspector's token lists no USCCs ({uscc_claim})")
    return Inspector(subject=subject, agency=agency)
