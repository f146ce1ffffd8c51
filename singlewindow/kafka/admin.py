"""Idempotent topic provisioning from the catalog, through the Kafka admin API, and the wait
for the topics a service uses, before it starts.

``python -m singlewindow.kafka.admin wait-for-topics`` is the init container of every
Deployment on Kubernetes: it returns once every topic this process's principal uses exists
with the catalog's partition count and a leader on every partition, so that no consumer ever
subscribes before its topics are there (the topics are Strimzi ``KafkaTopic`` resources,
created by the Topic Operator while the services start). It asks for the metadata of *all*
topics, never of named ones: a metadata request naming a missing topic lets a broker that
auto-creates topics create it, with the broker's defaults (aiokafka sends
``allow_auto_topic_creation=true`` in every such request and has no setting to send false);
the platform's brokers forbid that too (``auto.create.topics.enable=false``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Collection, Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError

from singlewindow.kafka.options import kafka_options
from singlewindow.retry import pause, retry
from singlewindow.security import principal
from singlewindow.settings import Settings, get_settings
from singlewindow.topics import Topic
from singlewindow.topics import catalog as platform_catalog

log = logging.getLogger(__name__)


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


# -- waiting for the topics ----------------------------------------------------------------

# topic -> the leader of each partition (-1: none), as the cluster's metadata says
Leaders = Mapping[str, list[int]]


def topics_used(settings: Settings, catalog: tuple[Topic, ...] | None = None) -> list[str]:
    """The topics this process's principal reads, writes or describes, in catalog order
    (without SASL, or as a super user: every topic of the catalog). A principal sees only the
    topics its ACLs name, so it can only wait for those."""
    catalog = platform_catalog() if catalog is None else catalog
    names = [t.name for t in catalog]
    if settings.kafka_sasl_username is None:
        return names
    who = principal(settings.kafka_sasl_username)
    if who.super_user:
        return names
    used = {*who.reads, *who.writes, *who.describes}
    return [name for name in names if name in used]


def unready(wanted: Collection[str], partitions: int, leaders: Leaders) -> list[str]:
    """What keeps the topics ``wanted`` from being usable, one line each (empty: they are):
    a topic missing, with another partition count than the catalog's (co-partitioning), or
    with a partition that has no leader yet."""
    problems = []
    for name in wanted:
        found = leaders.get(name)
        if found is None:
            problems.append(f"{name}: missing")
        elif len(found) != partitions:
            problems.append(f"{name}: {len(found)} partitions, the catalog needs {partitions}")
        elif any(leader < 0 for leader in found):
            problems.append(f"{name}: a partition without a leader")
    return problems


async def cluster_leaders(settings: Settings) -> dict[str, list[int]]:
    """Topic -> the leader of each of its partitions, for every topic this principal may
    describe: one metadata request for all topics, which never creates one."""
    admin = await admin_client(settings)
    try:
        metadata = await admin._get_cluster_metadata(topics=None)  # all topics: no auto-create
    finally:
        await admin.close()
    return {
        topic["topic"]: [p["leader"] for p in topic["partitions"]]
        for topic in metadata.to_object()["topics"]
        if not topic["error_code"]
    }


async def wait_for_topics(
    wanted: Collection[str],
    partitions: int,
    leaders: Callable[[], Awaitable[Leaders]],
    poll_s: float = 2.0,
    timeout_s: float | None = None,
) -> None:
    """Return once ``unready(wanted, partitions, await leaders())`` is empty; each time it is
    not, log what is missing and look again after ``poll_s``. TimeoutError (naming what is
    still missing) after ``timeout_s``, if given."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout_s is None else loop.time() + timeout_s
    while True:
        problems = unready(wanted, partitions, await leaders())
        if not problems:
            return
        if deadline is not None and loop.time() >= deadline:
            raise TimeoutError("topics not ready: " + "; ".join(problems))
        log.info("waiting for topics: %s", "; ".join(problems))
        await pause(poll_s)


def main(argv: list[str]) -> int:
    """``wait-for-topics [--timeout SECONDS]``: exit 0 once this process's topics are ready
    (the settings' partition count), 1 when the timeout passes first."""
    if not argv or argv[0] != "wait-for-topics":
        print("usage: python -m singlewindow.kafka.admin wait-for-topics [--timeout SECONDS]")
        return 2
    timeout = float(argv[argv.index("--timeout") + 1]) if "--timeout" in argv else None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = get_settings()
    wanted = topics_used(settings)

    async def leaders() -> Leaders:
        return await cluster_leaders(settings)

    try:
        asyncio.run(wait_for_topics(wanted, settings.topic_partitions, leaders, timeout_s=timeout))
    except TimeoutError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{len(wanted)} topics ready")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
