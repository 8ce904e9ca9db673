"""A trigger's lag gauge and record counter, read back from the SDK's in-memory reader;
the consumer is a plain fake with positions and watermarks."""

from __future__ import annotations

from dataclasses import dataclass

from replayflow.telemetry.testing import InMemoryTelemetry
from replayflow.telemetry.trigger import TriggerTelemetry


@dataclass
class TP:
    topic: str
    partition: int
    offset: int = -1001


class FakeConsumer:
    def __init__(self, positions: dict[int, int], highs: dict[int, int]) -> None:
        self.positions = positions
        self.highs = highs

    def assignment(self) -> list[TP]:
        return [TP("orders", p) for p in self.positions]

    def position(self, partitions: list[TP]) -> list[TP]:
        return [TP(tp.topic, tp.partition, self.positions[tp.partition]) for tp in partitions]

    def get_watermark_offsets(self, tp: TP, cached: bool = False) -> tuple[int, int]:
        return 0, self.highs[tp.partition]


def test_lag_per_partition_with_the_trigger_name_and_records_by_outcome() -> None:
    with InMemoryTelemetry() as otel:
        assert otel.telemetry is not None
        telemetry = TriggerTelemetry(otel.telemetry, "ns.replayflow.trigger.orders", "orders")
        consumer = FakeConsumer({0: 10, 1: -1001}, {0: 25, 1: 7})
        telemetry.tick(consumer, force=True)
        assert telemetry.total_lag() == 15  # partition 1 has no position yet: not counted
        telemetry.handled("started", 3)
        telemetry.handled("dead_letters", 1)
        telemetry.handled("skipped", 0)
        metrics = otel.metrics()
        [lag] = metrics["replayflow.consumer.lag"]
        assert lag.value == 15
        assert dict(lag.attributes) == {
            "trigger": "orders",
            "consumer.group": "ns.replayflow.trigger.orders",
            "topic": "orders",
            "partition": 0,
        }
        counted = {p.attributes["outcome"]: p.value for p in metrics["replayflow.trigger.records"]}
        assert counted == {"started": 3, "dead_letters": 1}
        telemetry.close()
        assert (
            "replayflow.consumer.lag" not in otel.metrics()
            or not otel.metrics()["replayflow.consumer.lag"]
        )
