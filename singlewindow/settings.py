"""Process settings, read from the environment (pydantic-settings).

Every service reads ``KAFKA_BOOTSTRAP_SERVERS`` and ``MONGODB_URL``; nothing else is required.
"""

from __future__ import annotations

from functools import cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings shared by every process of the platform."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field("localhost:9092", description="Kafka bootstrap servers")
    mongodb_url: str = Field("mongodb://localhost:27017/", description="MongoDB-protocol database")
    mongodb_database: str = Field("singlewindow", description="database name for the read model")
    topic_partitions: int = Field(
        6, ge=1, description="partitions of every declaration-keyed topic"
    )
    topic_replication_factor: int = Field(1, ge=1, description="replication factor of new topics")
    kafka_request_timeout_ms: int = Field(15_000, ge=1000, description="Kafka request timeout")
    dead_letter_max_bytes: int = Field(
        1_000_000,
        ge=16_384,
        description="largest dead letter written; a larger original is truncated and hashed "
        "(below the broker's message.max.bytes, 1,048,588 by default)",
    )
    kafka_session_timeout_ms: int = Field(
        6_000, ge=6000, description="consumer group session: how soon a dead member is replaced"
    )


@cache
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
