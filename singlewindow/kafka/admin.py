"""Idempotent topic provisioning from the catalog, through the Kafka admin API."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError

from singlewindow.kafka.options import kafka_options
from singlewindow.retry import retry
from singlewindow.settings import Settings
from singlewindow.topics import Topic
from singlewindow.topics import catalog as platform_catalog


class TopicMismatch(RuntimeError):
    """An existing topic disagrees with the catalog in a way that breaks co-partitioning."""


async def admin_client(settings: Settings, ready_timeout: float = 120.0) -> AIOKafkaAdminClient:
    """A started admin client, retrying every 0.5 s until the broker answers or the timeout
    passes (then the last KafkaConnectionError is raised)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ready_timeout

    async def attempt() -> AIOKafkaAdminClient:
        admin = AIOKafkaAdminClient(
            **kafka_options(settings), request_timeout_ms=settings.kafka_request_timeout_ms
        )
        try:
            await admin.start()
            await admin.describe_cluster()
        except KafkaConnectionError:
            await admin.close()
            raise
        return admin

    def retryable(exc: BaseException) -> bool:
        return isinstance(exc, KafkaConnectionError) and loop.time() <= deadline

    admin: AIOKafkaAdminClient = await retry(attempt, retryable, first_s=0.5, max_s=0.5)
    return admin


async def provision_topics(
    settings: Settings, catalog: tuple[Topic, ...] | None = None
) -> list[str]:
    """Create every catalog topic that is missing; check the partition count of the rest.

    Returns the names created. Safe to run any number of times.
    """
    catalog = platform_catalog() if catalog is None else catalog
    admin = await admin_client(settings)
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in catalog if t.name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        name=t.name,
                        num_partitions=settings.topic_partitions,
                        replication_factor=settings.topic_replication_factor,
                        topic_configs=t.configs(),
                    )
                    for t in missing
                ]
            )
        present = [t.name for t in catalog if t.name in existing]
        if present:
            for desc in await admin.describe_topics(present):
                count = len(desc["partitions"])
                if count != settings.topic_partitions:
                    raise TopicMismatch(
                        f"topic {desc['topic']} has {count} partitions, the catalog needs "
                        f"{settings.topic_partitions} (co-partitioning by declaration id)"
                    )
        return [t.name for t in missing]
    finally:
        await admin.close()


FETCH_API = 1


async def broker_api_versions(settings: Settings) -> dict[int, tuple[int, int]]:
    """The API versions the broker supports, from an ApiVersions request: ``{key: (min, max)}``."""
    from aiokafka.protocol.admin import ApiVersionRequest

    admin = await admin_client(settings)
    try:
        client = admin._client  # aiokafka's admin has no public ApiVersions call
        node = next(iter(client.cluster.brokers())).nodeId
        response = await client.send(node, ApiVersionRequest())
        return {key: (low, high) for key, low, high in response.api_versions}
    finally:
        await admin.close()


def is_kafka_4_or_later(versions: dict[int, tuple[int, int]]) -> bool:
    """Kafka 4.0 removed Fetch v0-v3 (KIP-896); every 3.x broker still accepts them."""
    return versions[FETCH_API][0] >= 4


async def topic_configs(settings: Settings, names: list[str]) -> dict[str, dict[str, str]]:
    """The effective configs of topics: ``{topic: {key: value}}``."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = await admin_client(settings)
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
    finally:
        await admin.close()
    return {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}
        for response in responses
        for resource in response.resources
    }
