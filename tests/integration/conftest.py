"""Integration tests run against the real broker and database that ``make up`` starts
(or the ones ``KAFKA_BOOTSTRAP_SERVERS`` / ``MONGODB_URL`` point at)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import NewTopic
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from singlewindow.db import mongo_client
from singlewindow.kafka.admin import admin_client
from singlewindow.settings import Settings, get_settings
from tests.factories import with_keys

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The broker and database settings of the process; the tests' own key registry
    (:func:`tests.factories.with_keys`): what a service under test verifies with."""
    return with_keys(get_settings())


@pytest.fixture
async def scratch_topic(settings: Settings) -> AsyncIterator[str]:
    """A fresh topic with the catalog's partition count, deleted afterwards."""
    name = f"test.scratch.{uuid.uuid4().hex[:12]}"
    admin = await admin_client(settings, ready_timeout=30)
    try:
        await admin.create_topics([NewTopic(name, settings.topic_partitions, 1)])
        yield name
        await admin.delete_topics([name])
    finally:
        await admin.close()


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[AsyncDatabase[dict[str, object]]]:
    """A fresh database, dropped afterwards."""
    client: AsyncMongoClient[dict[str, object]] = mongo_client(settings)
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]
        await client.drop_database(name)
    finally:
        await client.close()
