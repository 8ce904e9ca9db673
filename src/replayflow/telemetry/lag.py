"""Consumer lag: high watermark minus position per assigned partition, sampled at most
every `interval` seconds from librdkafka's cached watermarks (no broker round trip)."""

from __future__ import annotations

import time
from typing import Any

from replayflow.telemetry.setup import Telemetry


class LagSampler:
    def __init__(
        self,
        telemetry: Telemetry,
        group: str,
        interval: float = 5.0,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        self.group = group
        self.attributes = attributes or {}  # added to every point (a trigger's name)
        self.interval = interval
        self.lag: dict[tuple[str, int], int] = {}
        self._next = 0.0
        self._telemetry = telemetry
        self._key = telemetry.add_gauge("lag", self._observe)

    def sample(self, consumer: Any, force: bool = False) -> None:
        now = time.monotonic()
        if now < self._next and not force:
            return
        self._next = now + self.interval
        try:
            positions = consumer.position(consumer.assignment())
        except Exception:  # not assigned yet, closing: try again next time
            return
        lag: dict[tuple[str, int], int] = {}
        for tp in positions:
            if tp.offset < 0:
                continue  # nothing consumed there yet: no position to measure from
            try:
                marks = consumer.get_watermark_offsets(tp, cached=True)
            except Exception:
                continue
            if not marks or marks[1] < 0:
                continue
            # Under read_committed the high watermark counts transaction markers, so an
            # idle partition can show a lag of 1.
            lag[(tp.topic, tp.partition)] = max(0, int(marks[1]) - int(tp.offset))
        self.lag = lag

    def _observe(self) -> list[tuple[float, dict[str, Any]]]:
        return [
            (
                value,
                {
                    **self.attributes,
                    "consumer.group": self.group,
                    "topic": topic,
                    "partition": partition,
                },
            )
            for (topic, partition), value in dict(self.lag).items()
        ]

    def close(self) -> None:
        self._telemetry.remove_gauge("lag", self._key)
