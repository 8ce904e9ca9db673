"""Durable streams, the pure part: what a step attempt writes (AttemptStreams), what a
workflow body writes (WorkflowStream, through a built-in step), and how a reader turns
the records of replayflow.streams into what it shows (StreamView).

Why values carry their attempt: a step may fail after writing half an answer and run
again. Readers see values at once (low latency) and learn afterwards, from a marker,
that an attempt's values are void; a reader that wants only values that count waits
for each attempt's end (`settled`). Rules, in log order:

- StreamAttemptEnded FAILED voids that attempt's values;
- a record of attempt n+1 of a step voids attempts <= n still open (the worker of
  attempt n died: it wrote no end marker);
- StreamEnded (the instance ended) voids every attempt still open, and ends the stream;
- StreamClosed ends the stream once its attempt COMPLETED.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from replayflow.core.context import CLOSE_STEP, WRITE_STEP, WorkflowStream
from replayflow.core.names import check_name
from replayflow.core.payloads import DEFAULT_MAX_PAYLOAD, dump, load
from replayflow.core.stream_records import (
    COMPLETED,
    FAILED,
    StreamAttemptEnded,
    StreamClosed,
    StreamEnded,
    StreamRecord,
    StreamValue,
)

__all__ = ["CLOSE_STEP", "WRITE_STEP", "AttemptStreams", "StepStream", "StreamItem", "StreamView"]
__all__ += ["StreamSink", "WorkflowStream"]

ItemKind = Literal["value", "retracted", "closed", "ended"]


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


# -- reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamItem:
    """What a reader yields. `value`: a value (`retracted` False while its attempt may
    still fail). `retracted`: every value of (step, attempt) read so far is void
    (`reason`: FAILED, RETRIED or UNFINISHED). `closed`: the writer closed the stream.
    `ended`: the instance ended (`reason`: its status). `offset` is the record's position
    in the topic: reading again from offset + 1 resumes after it."""

    kind: ItemKind
    offset: int
    stream: str
    value: Any = None
    step: str = ""
    attempt: int = 0
    index: int = 0
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "offset": self.offset,
            "stream": self.stream,
            "value": self.value,
            "step": self.step,
            "attempt": self.attempt,
            "index": self.index,
            "reason": self.reason,
        }


@dataclass
class _Attempt:
    first: int  # offset of its first record
    values: list[StreamItem] = field(default_factory=list)
    wrote: bool = False  # to this view's stream
    closing: int | None = None  # offset of a StreamClosed it wrote


class StreamView:
    """Folds one instance's stream records into items of one named stream. `settled`
    holds each attempt's values until it COMPLETED (and drops those of attempts that
    did not); otherwise values come at once and retractions follow."""

    def __init__(self, instance_id: str, stream: str, settled: bool = False) -> None:
        self.instance_id = instance_id
        self.stream = stream
        self.settled = settled
        self.done = False
        self._open: dict[tuple[str, int], _Attempt] = {}
        self._latest: dict[str, int] = {}  # step -> highest attempt seen

    def feed(self, offset: int, record: Any) -> list[StreamItem]:
        if self.done or getattr(record, "instance_id", None) != self.instance_id:
            return []
        if isinstance(record, StreamEnded):
            out = self._void(list(self._open), "UNFINISHED", offset)
            self.done = True
            return [*out, StreamItem("ended", offset, self.stream, reason=record.status)]
        if isinstance(record, StreamAttemptEnded):
            return self._ended(offset, record)
        if not isinstance(record, StreamValue | StreamClosed) or record.stream != self.stream:
            if isinstance(record, StreamValue | StreamClosed):
                return self._superseded(offset, record.step, record.attempt)
            return []
        out = self._superseded(offset, record.step, record.attempt)
        key = (record.step, record.attempt)
        attempt = self._open.setdefault(key, _Attempt(offset))
        attempt.wrote = True
        if isinstance(record, StreamClosed):
            attempt.closing = offset
            return out
        item = StreamItem(
            "value",
            offset,
            self.stream,
            load(record.value, f"a value of stream {self.stream!r}"),
            record.step,
            record.attempt,
            record.index,
        )
        if self.settled:
            attempt.values.append(item)
        else:
            out.append(item)
        return out

    def resume_offset(self, position: int) -> int:
        """Where a new reader should start to miss nothing this one has not yielded:
        `position` (the next offset to read), or, while `settled` holds values of an
        attempt that has not ended, that attempt's first record."""
        held = [a.first for a in self._open.values() if a.values]
        return min([position, *held])

    def _superseded(self, offset: int, step: str, attempt: int) -> list[StreamItem]:
        latest = self._latest.get(step, 0)
        if attempt <= latest:
            return []
        self._latest[step] = attempt
        older = [k for k in self._open if k[0] == step and k[1] < attempt]
        return self._void(older, "RETRIED", offset)

    def _ended(self, offset: int, record: StreamAttemptEnded) -> list[StreamItem]:
        out = self._superseded(offset, record.step, record.attempt)
        key = (record.step, record.attempt)
        attempt = self._open.pop(key, None)
        if attempt is None:
            return out
        if record.outcome != COMPLETED:
            self._open[key] = attempt
            return out + self._void([key], FAILED, offset)
        out += attempt.values
        if attempt.closing is not None:
            self.done = True
            out.append(StreamItem("closed", attempt.closing, self.stream, step=record.step))
        return out

    def _void(self, keys: list[tuple[str, int]], reason: str, offset: int) -> list[StreamItem]:
        out = []
        for key in keys:
            attempt = self._open.pop(key)
            if attempt.wrote and not self.settled:
                out.append(
                    StreamItem(
                        "retracted", offset, self.stream, step=key[0], attempt=key[1], reason=reason
                    )
                )
        return out
