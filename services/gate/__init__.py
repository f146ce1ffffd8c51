"""The port's gate (卡口): goods leave the port only under a release, one gate-out each.

A declaration's RELEASED or CONDITIONALLY_RELEASED result on ``clearance.results`` is its
release notice (放行). When a vehicle reaches the gate, a gate officer of the port authority
asks the gate system to let it out: the gate reads the declaration's read-model document (the
one the projector keeps, the intake's status API reads: ``singlewindow.readmodel``) and opens
only if its latest status is a release, and only for containers the declaration lists (when it
lists any). It then publishes a signed ``GateOut`` on ``gate.out`` naming the release result it
relied on (principal and signer ``gate``).

The gate officer authenticates with an inspector's bearer JWT (``sub`` and ``agency``:
``services.intake.auth.inspector_of``) whose agency is the port authority (``GATE_AGENCY``,
``port`` by default); another agency's inspector is refused (403), a trader's token is no
officer's (401). The officer is the token's subject, never the body's.

The gate reads the database and never writes it; it reads nothing on Kafka. The projector folds
``gate.out`` into the read model (``gate_outs``), so the gate refuses a container that has
already gone out (409 ``already-out``); a declaration without containers (bulk, air cargo)
may pass several vehicles under one release. The auditors see every gate-out (``audit
verify``: a gate-out without a release before it is a finding).

- ``api``: the HTTP API (``POST /v1/gate-out``, ``GET /livez``, ``/readyz``, ``/healthz``);
- ``gateout``: the request, the gate-out ids and the use case (authorise, check, publish);
- ``config``: the ``GATE_*`` settings; ``__main__``: the composition root.
"""
