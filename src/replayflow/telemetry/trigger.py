"""A Kafka topic trigger's telemetry: its consumer lag on the source topic (the
`replayflow.consumer.lag` gauge, with the trigger's name as attribute `trigger`) and
a count of the records it handled by outcome (`replayflow.trigger.records`: started,
event, skipped, dead_letter)."""

from __future__ import annotations

from typing import Any

from replayflow.telemetry.lag import LagSampler
from replayflow.telemetry.setup import Telemetry


class TriggerTelemetry:
    def __init__(self, telemetry: Telemetry, group: str, trigger: str, interval: float = 5.0):
        self.telemetry = telemetry
        self.trigger = trigger
        # Lag is measured even without a metrics provider: `replayflow trigger` logs it
        # and the benchmark reads it.
        self.lag = LagSampler(telemetry, group, interval, attributes={"trigger": trigger})
        self._records = (
            telemetry.meter.create_counter(
                "replayflow.trigger.records",
                unit="{record}",
                description="Source records a Kafka topic trigger handled, by outcome",
            )
            if telemetry.metrics
            else None
        )

    def tick(self, consumer: Any, force: bool = False) -> None:
        self.lag.sample(consumer, force)

    def total_lag(self) -> int:
        return sum(self.lag.lag.values())

    def handled(self, outcome: str, count: int) -> None:
        if self._records is not None and count:
            self._records.add(count, {"trigger": self.trigger, "outcome": outcome})

    def close(self) -> None:
        self.lag.close()
