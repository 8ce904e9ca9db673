"""Durable streams, the pure part: what a step attempt writes (AttemptStreams), what a
workflow body writes (WorkflowStream, through a built-in step). How a reader turns the
records of replayflow.streams into what it shows is core/stream_view.py (StreamView,
re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from replayflow.core.context import CLOSE_STEP, WRITE_STEP, WorkflowStream
from replayflow.core.names import check_name
from replayflow.core.payloads import DEFAULT_MAX_PAYLOAD, dump
from replayflow.core.stream_records import (
    COMPLETED,
    FAILED,
    StreamAttemptEnded,
    StreamClosed,
    StreamRecord,
    StreamValue,
)
from replayflow.core.stream_view import Cursor, StreamItem, StreamView

__all__ = ["CLOSE_STEP", "WRITE_STEP", "AttemptStreams", "Cursor", "StepStream", "StreamItem"]
__all__ += ["StreamSink", "StreamView", "WorkflowStream"]


class StreamSink(Protocol):
    def emit(self, record: StreamRecord) -> None:
        """Append one record to the instance's streams (in the order emitted)."""
        ...


# -- writing ----------------------------------------------------------------------------


class AttemptStreams:
    """The streams of one step attempt: counts what it wrote, and ends the attempt with
    a marker when (and only when) it wrote anything."""

    def __init__(
        self,
        sink: StreamSink,
        instance_id: str,
        step: str,
        attempt: int,
        clock: Callable[[], int],
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        self.sink = sink
        self.instance_id = instance_id
        self.step = step
        self.attempt = attempt
        self._clock = clock
        self._max_payload = max_payload
        self._counts: dict[str, int] = {}
        self.used = False

    def stream(self, name: str) -> StepStream:
        return StepStream(self, check_name(name, "stream name"))

    def write(self, name: str, value: Any) -> None:
        text = dump(value, f"a value of stream {name!r}", self._max_payload)
        index = self._counts.get(name, 0)
        self._counts[name] = index + 1
        self.used = True
        self.sink.emit(
            StreamValue(
                instance_id=self.instance_id,
                stream=name,
                step=self.step,
                attempt=self.attempt,
                index=index,
                value=text,
                at=self._clock(),
            )
        )

    def close(self, name: str) -> None:
        self.used = True
        self.sink.emit(
            StreamClosed(
                instance_id=self.instance_id,
                stream=name,
                step=self.step,
                attempt=self.attempt,
                at=self._clock(),
            )
        )

    def end(self, completed: bool) -> bool:
        """Write the attempt's end marker if it wrote anything; whether it did."""
        if not self.used:
            return False
        self.sink.emit(
            StreamAttemptEnded(
                instance_id=self.instance_id,
                step=self.step,
                attempt=self.attempt,
                outcome=COMPLETED if completed else FAILED,
                at=self._clock(),
            )
        )
        return True


@dataclass(frozen=True)
class StepStream:
    """`rf.current_step().stream("tokens")`: write values, close when done."""

    _attempt: AttemptStreams
    name: str

    def write(self, value: Any) -> None:
        """Append a JSON value; readers see it within milliseconds."""
        self._attempt.write(self.name, value)

    def close(self) -> None:
        """Readers stop after this attempt's values (once the attempt completed)."""
        self._attempt.close(self.name)
