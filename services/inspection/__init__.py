"""The joint inspection station: inspectors' findings against the one inspection order.

When the consolidated answer is INSPECTION_REQUIRED, the aggregator's join issues one
inspection order per declaration version (``ClearanceResult.inspection``), naming every
agency's checks; the goods are presented once (一次查验) at the joint inspection site, and each
agency named records its findings against that order here. The station publishes each
finding as a signed ``InspectionFinding`` on ``inspections.findings`` and the join decides
what the findings add up to (:mod:`services.aggregator.inspection`).

The design: the station is the joint inspection site's system of record. Each agency's
inspector authenticates with a bearer JWT naming the agency they inspect for (``agency``,
a registered agency's code, and ``sub``: ``services.intake.auth.inspector_of``); the
station records their findings against the order, signed under the station's own key
(principal and signer ``inspection``), exactly as the intake relays traders' declarations
under its key after verifying their tokens. A finding's ``agency`` and ``inspector`` are
the token's, never the body's. An agency's *rulings* stay on its own verdict topic under its
own key: the station never writes verdicts.

The station knows neither orders nor which agencies they name, as the bank knows no notices:
a finding on an order that does not exist, of another version, or by an agency the order does
not name answers nothing (the join ignores it, ``audit verify`` reports it).

- ``api``: the HTTP API (``POST /v1/inspections/{order_id}/findings``, ``GET /livez``,
  ``/readyz``, ``/healthz``);
- ``findings``: the request, the finding ids and the use case (authenticate, parse, record);
- ``config``: the ``INSPECTION_*`` settings; ``__main__``: the composition root.
"""
