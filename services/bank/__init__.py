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

- ``api``: the HTTP API (``POST /v1/payments``, ``GET /healthz``);
- ``payments``: the request, the payment ids and the use case (authenticate, check, publish);
- ``config``: the ``BANK_*`` settings; ``__main__``: the composition root.
"""
