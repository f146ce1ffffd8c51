"""How an auditor recomputes a customs verdict (the registry's ``recompute`` of customs):
with the reference version in force on the declaration's acceptance date (a verdict that
named another one is a mismatch), its random sample redrawn with the sampling key version the
verdict names, when the auditor holds that key; else the rest of the verdict checked with the
draw as recorded."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from fractions import Fraction

from services.audit.verify import Recomputed
from services.customs import reference as customs_reference
from services.customs import rules as customs_rules
from services.customs.sampling import SAMPLE_SPACE, Keyring, SampleDraw
from singlewindow.events import AgencyVerdict, DeclarationSubmitted
from singlewindow.reference import in_force


def unkeyed_draw(declaration_id: str, rate: Decimal) -> SampleDraw:
    """The draw of verdicts written before keyed sampling: SHA-256 of the id, no key."""
    digest = hashlib.sha256(declaration_id.encode("utf-8")).digest()
    fraction = Fraction(int.from_bytes(digest[:4], "big"), SAMPLE_SPACE)
    return SampleDraw(None, fraction < Fraction(rate))


def recomputed_customs(
    keyring: Keyring | None, declaration: DeclarationSubmitted, recorded: AgencyVerdict
) -> Recomputed:
    """Customs' verdict again, its sample redrawn with the key version it names if held."""
    reference = customs_reference.load_reference(
        in_force(customs_reference.PACKAGE, recorded.rules_version, declaration.submitted_at)
    )
    version, now = recorded.sampling_key_version, recorded.decided_at
    if version is None:
        draw = unkeyed_draw(declaration.declaration_id, reference.random_inspection_rate)
        return Recomputed(customs_rules.assess_drawn(declaration, reference, now, draw))
    key = keyring.get(version) if keyring is not None else None
    if key is not None:
        return Recomputed(customs_rules.assess(declaration, reference, now, key))
    as_recorded = SampleDraw(
        version, any(r.code == customs_rules.RANDOM_SAMPLE for r in recorded.reasons)
    )
    return Recomputed(
        customs_rules.assess_drawn(declaration, reference, now, as_recorded),
        f"customs drew under sampling key version {version!r} and {_held(keyring)}; "
        "the rest of the verdict was checked",
    )


def _held(keyring: Keyring | None) -> str:
    """Which sampling keys the auditor holds, in words."""
    if keyring is None:
        return "no sampling keys were supplied"
    return f"the keys supplied are of versions {', '.join(keyring.versions)}"
