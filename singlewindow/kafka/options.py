"""How every Kafka client of the platform connects: one function, :func:`kafka_options`.

Producers, consumers and admin clients alike are built with ``**kafka_options(settings)``:
the bootstrap servers and the security settings (``KAFKA_SECURITY_PROTOCOL``, the SASL
mechanism and this process's principal, the CA file that signs the brokers' certificates).
Nothing else in the code base names them, so no client can connect otherwise.

No client here can stop a broker from creating a topic it names: aiokafka (0.14) sends
``allow_auto_topic_creation=true`` in every metadata request that names topics (a consumer's
subscription, a producer's first send) and has no setting to send false (Java's
``allow.auto.create.topics``). The brokers forbid it (``auto.create.topics.enable=false``:
``deploy/local/server.properties``, Strimzi's ``Kafka`` in ``deploy/k8s/base/kafka.yaml``),
and on Kubernetes no service starts before its topics exist (``wait-for-topics``,
:mod:`singlewindow.kafka.admin`).

The TLS context is built once per CA file and process, and shared by every client (a
context serves any number of connections): never per message, nor per client replaced
after a fault.
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from pathlib import Path
from typing import Any

from aiokafka.helpers import create_ssl_context

from singlewindow.settings import Settings


@lru_cache(maxsize=8)
def ssl_context(cafile: Path | None) -> ssl.SSLContext:
    """A client TLS context verifying the broker's certificate and host name against
    ``cafile`` (None: the system's trusted CAs). Cached: one per CA file and process."""
    context: ssl.SSLContext = create_ssl_context(cafile=str(cafile) if cafile else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def kafka_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments that connect an aiokafka client (``AIOKafkaProducer``,
    ``AIOKafkaConsumer``, ``AIOKafkaAdminClient``) as this process's principal."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": protocol,
    }
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl_context(settings.kafka_ssl_cafile)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        password = settings.kafka_sasl_password
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options
