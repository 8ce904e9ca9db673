"""The floor under a stream's latency: a bare confluent-kafka producer and consumer with
the stream writer's and reader's settings, on the same broker, topic and rate, in the
same run as the engine (benchmarks/streams.py).

A value written by a step crosses exactly this: librdkafka in the worker, the broker, a
read_uncommitted fetch in the reader. What the bare pair measures is what the machine
and Kafka cost; the engine's figure minus this is the engine's own. On a machine whose
CPUs are busy the bare pair's tail grows the same way (its threads wait for a CPU), so
the two figures read together say whether a missed goal is the engine's.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from confluent_kafka import TopicPartition

from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.partition import murmur2_partition
from replayflow.processors.stream_reader import LOW_LATENCY
from replayflow.settings import Settings
from replayflow.topics import Topics


def bare_run(settings: Settings, rate: float, seconds: float) -> dict[str, Any]:
    """Latencies (ms) of `rate * seconds` values sent by a bare producer to a bare
    consumer through the streams topic (under a key no instance has)."""
    topic = Topics(settings).streams
    key = f"bench-bare-{uuid.uuid4().hex[:12]}".encode()
    count = int(rate * seconds)
    producer = clients.producer(settings, **{"linger.ms": 1, "socket.nagle.disable": True})
    consumer = clients.consumer(
        settings, None, **{**LOW_LATENCY, "isolation.level": "read_uncommitted"}
    )
    partition = murmur2_partition(key, len(topic_partitions(consumer, topic)))
    _, end = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    consumer.assign([TopicPartition(topic, partition, end)])

    def send() -> None:
        started = time.perf_counter()
        for i in range(count):
            due = started + i / rate
            while (left := due - time.perf_counter()) > 0:
                time.sleep(min(left, 0.0005) if left < 0.002 else left - 0.001)
            producer.produce(topic, str(time.time_ns()).encode(), key=key, partition=partition)
            producer.poll(0)
        producer.flush(30)

    sender = threading.Thread(target=send, daemon=True)
    latencies: list[float] = []
    deadline = time.monotonic() + seconds + 60
    sender.start()
    while len(latencies) < count and time.monotonic() < deadline:
        message = consumer.poll(0.1)
        if message is None or message.error() is not None or message.key() != key:
            continue
        latencies.append((time.time_ns() - int(message.value() or b"0")) / 1e6)
    sender.join(30)
    consumer.close()
    if len(latencies) != count:
        raise SystemExit(f"bare pair: read {len(latencies)} values of {count}")
    ordered = sorted(latencies)
    return {
        "p50": round(ordered[len(ordered) // 2], 2),
        "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "max": round(ordered[-1], 2),
    }
