"""Questions to the cluster's metadata: which partitions a topic has."""

from __future__ import annotations

from typing import Any

from replayflow.kafka.config import METADATA_TIMEOUT


def topic_partitions(client: Any, topic: str, timeout: float = METADATA_TIMEOUT) -> list[int]:
    """The partition numbers of `topic`, in order; [] when the cluster has no such topic.
    `client` is any confluent_kafka client (producer, consumer or admin)."""
    metadata = client.list_topics(topic, timeout=timeout).topics.get(topic)
    if metadata is None or metadata.error is not None:
        return []
    return sorted(metadata.partitions)
