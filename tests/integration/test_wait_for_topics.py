"""The init container's wait (``python -m singlewindow.kafka.admin wait-for-topics``) on the
real broker: the stack's topics are ready; a topic that is missing stays missing (asking for
the cluster's metadata creates nothing) and the wait times out naming it."""

from __future__ import annotations

import uuid

import pytest

from singlewindow.kafka.admin import cluster_leaders, topics_used, wait_for_topics
from singlewindow.settings import Settings
from singlewindow.topics import catalog

pytestmark = pytest.mark.integration


async def test_the_stacks_topics_are_ready(settings: Settings) -> None:
    async def leaders() -> dict[str, list[int]]:
        return await cluster_leaders(settings)

    await wait_for_topics(topics_used(settings), settings.topic_partitions, leaders, timeout_s=30)
    ready = await cluster_leaders(settings)
    assert {t.name for t in catalog()} <= set(ready)


async def test_a_missing_topic_is_waited_for_and_never_created(settings: Settings) -> None:
    missing = f"test.never.{uuid.uuid4().hex[:12]}"

    async def leaders() -> dict[str, list[int]]:
        return await cluster_leaders(settings)

    with pytest.raises(TimeoutError, match=f"{missing}: missing"):
        await wait_for_topics(
            [missing], settings.topic_partitions, leaders, poll_s=0.2, timeout_s=1
        )
    assert missing not in await cluster_leaders(settings)
