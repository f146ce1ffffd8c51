"""The bank: a simulated payment service that confirms duties paid or guaranteed.

A trader (or its broker) tells the bank it paid, or that a bank guarantee covers, a payment
notice the aggregator issued (``ClearanceResult.payment_notice``); the bank publishes a signed
``PaymentConfirmed`` on ``payments.confirmed`` and the aggregator's join decides what it
settles (:mod:`services.aggregator.payment`).

The bank knows neither notices nor amounts due: it confirms what it is told was paid, by whom
and when, and nothing else. Whether the notice exists, belongs to the declaration, is
current, is covered, and how much late interest is owed are the aggregator's to decide.

A real bank adapter would stamp ``paid_at`` itself, from its own books. This simulation takes
a value date (``paid_at``, not in the future) so that late payment can be exercised.

The general guarantees (总担保) it issued are the exception: the bank is their guarantor and
keeps their balances, so a draw on one is decided and recorded at the bank before it is
confirmed, and repaid to it in the consolidated payment (汇总征税).

- ``api``: the HTTP API (``POST /v1/payments``, ``POST /v1/guarantees/{id}/repayments``,
  ``GET /v1/guarantees/{id}``, ``GET /livez``, ``/readyz``, ``/healthz``);
- ``payments``: the requests, the payment ids and the use cases (authenticate, check, draw or
  repay on the ledger, publish);
- ``guarantees``: the guarantees issued (``BANK_GUARANTEES_FILE``); ``ledger``: a guarantee's
  ledger and the pure decisions on it; ``store``: where the ledgers are kept (the database);
- ``config``: the ``BANK_*`` settings; ``__main__``: the composition root.
"""
