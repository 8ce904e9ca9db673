"""How a reader turns the records of replayflow.streams into what it shows (StreamView),
and where a reader that stops can go on without repeating anything (Cursor).

Why values carry their attempt: a step may fail after writing half an answer and run
again. Readers see values at once (low latency) and learn afterwards, from a marker,
that an attempt's values are void; a `settled` reader shows only values that count,
each attempt's once the engine accepted its result. Rules, in log order:

- StreamAttemptEnded FAILED (the worker's) voids that attempt's values;
- a record of attempt n+1 of a step voids attempts <= n still open (the worker of
  attempt n died, or the engine timed it out);
- StreamAttemptAccepted (the orchestrator's, in the transaction that records the
  step's result) makes the attempt's values count: a settled reader shows them now,
  and a StreamClosed the attempt wrote ends the stream. A worker's COMPLETED is not
  enough: the engine may have timed the attempt out before its result came;
- StreamEnded (the instance ended) voids every attempt still open, and ends the stream;
- records of an attempt that is over (voided or accepted) are ignored: a late write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from replayflow.core.payloads import load
from replayflow.core.stream_records import (
    FAILED,
    StreamAttemptAccepted,
    StreamAttemptEnded,
    StreamClosed,
    StreamEnded,
    StreamValue,
)

ItemKind = Literal["value", "retracted", "closed", "ended"]
Key = tuple[str, int]  # (step, attempt)

#: A cursor as text; the API documents the same pattern.
CURSOR_PATTERN = r"^(?:(\d{1,18})-)?(\d{1,18})(?:\.(\d{1,9}))?$"
_CURSOR = re.compile(CURSOR_PATTERN)


@dataclass(frozen=True)
class Cursor:
    """Where a reader stopped. Records before `at` were wholly handed over, and of
    record `at` its first `handed` items. A new reader starts reading at `read_from`
    (before `at` while attempts that wrote earlier are still open: it needs their
    values, or must know to void them) and shows only what comes after.

    Written as "at", "at.handed", "read_from-at" or "read_from-at.handed"; a plain
    offset n is the cursor "n" (read from n, nothing handed yet)."""

    read_from: int
    at: int
    handed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.read_from <= self.at or self.handed < 0:
            raise ValueError(f"not a stream cursor: {self.read_from}-{self.at}.{self.handed}")

    @classmethod
    def parse(cls, value: int | str | Cursor | None) -> Cursor:
        if value is None:
            return cls(0, 0)
        if isinstance(value, Cursor):
            return value
        if isinstance(value, int):
            return cls(max(value, 0), max(value, 0))
        match = _CURSOR.match(value.strip())
        if match is None:
            raise ValueError(
                f"not a stream cursor: {value!r} (an offset like 42, or a cursor like "
                "40-42.3 from a reader's `cursor`)"
            )
        read_from, at, handed = match.groups()
        start = int(at) if read_from is None else min(int(read_from), int(at))
        return cls(start, int(at), int(handed or 0))

    def __str__(self) -> str:
        text = str(self.at) if self.read_from == self.at else f"{self.read_from}-{self.at}"
        return f"{text}.{self.handed}" if self.handed else text

    def before(self, offset: int, index: int = 0) -> bool:
        """Whether item `index` of record `offset` was handed over before this cursor."""
        return offset < self.at or (offset == self.at and index < self.handed)


@dataclass(frozen=True)
class StreamItem:
    """What a reader yields. `value`: a value (`retracted` later if its attempt fails,
    unless the reader is settled). `retracted`: every value of (step, attempt) shown so
    far is void (`reason`: FAILED, RETRIED or UNFINISHED). `closed`: the writer closed
    the stream. `ended`: the instance ended (`reason`: its status). `offset` is the
    position of the record the item stands for (a value's own record, also when a
    settled reader shows it later); `cursor` is where a new reader goes on right after
    this item (pass it as `start`)."""

    kind: ItemKind
    offset: int
    stream: str
    value: Any = None
    step: str = ""
    attempt: int = 0
    index: int = 0
    reason: str = ""
    cursor: str = ""

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
            "cursor": self.cursor,
        }


@dataclass
class _Attempt:
    first: int  # offset of its first record in this view's stream
    values: list[StreamItem] = field(default_factory=list)  # held (settled)
    shown: bool = False  # a value of it was shown (not settled)
    closing: int | None = None  # offset of a StreamClosed it wrote


class StreamView:
    """Folds one instance's stream records into items of one named stream, from a
    cursor: feed it the records from `start` on, in log order."""

    def __init__(
        self,
        instance_id: str,
        stream: str,
        settled: bool = False,
        cursor: int | str | Cursor | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.stream = stream
        self.settled = settled
        self.resumed = Cursor.parse(cursor)
        self.done = False
        self._open: dict[Key, _Attempt] = {}
        self._latest: dict[str, int] = {}  # step -> highest attempt seen
        self._over: set[Key] = set()  # voided or accepted: later records are ignored
        self._final: Cursor | None = None  # where the stream ended, once it did

    @property
    def start(self) -> int:
        """The first offset to feed."""
        return self.resumed.read_from

    def feed(self, offset: int, record: Any) -> list[StreamItem]:
        """The items record `offset` makes, less those handed over before the cursor."""
        if self.done:
            return []
        before = self._read_from(offset)
        items = self._fold(offset, record)
        if self.done:
            # The stream is over at this record: a reader resumed anywhere after its
            # last item reads it again, shows none of its items, and is over too.
            self._final = max(self.resumed, Cursor(before, offset, len(items)), key=_order)
        after = self.cursor_after(offset)
        out = []
        for index, item in enumerate(items):
            if self.resumed.before(offset, index):
                continue
            last = index == len(items) - 1
            cursor = after if last else Cursor(before, offset, index + 1)
            out.append(_with_cursor(item, cursor))
        return out

    def cursor_after(self, offset: int) -> Cursor:
        """The cursor once everything up to record `offset` was handed over."""
        if self._final is not None:
            return self._final
        if self.resumed.before(offset + 1):
            return self.resumed  # still reading what the cursor had handed over
        return Cursor(self._read_from(offset + 1), offset + 1)

    def _read_from(self, position: int) -> int:
        return min([position, *(a.first for a in self._open.values())])

    # -- the rules --------------------------------------------------------------------

    def _fold(self, offset: int, record: Any) -> list[StreamItem]:
        if getattr(record, "instance_id", None) != self.instance_id:
            return []
        if isinstance(record, StreamEnded):
            out = self._void(list(self._open), "UNFINISHED", offset)
            self.done = True
            return [*out, StreamItem("ended", offset, self.stream, reason=record.status)]
        if not isinstance(
            record, StreamValue | StreamClosed | StreamAttemptEnded | StreamAttemptAccepted
        ):
            return []
        key = (record.step, record.attempt)
        if key in self._over or record.attempt < self._latest.get(record.step, 0):
            return []  # written after its attempt was over
        out = self._superseded(offset, record.step, record.attempt)
        if isinstance(record, StreamAttemptAccepted):
            return out + self._accepted(key)
        if isinstance(record, StreamAttemptEnded):
            if record.outcome == FAILED:
                out += self._void([key] if key in self._open else [], FAILED, offset)
                self._over.add(key)
            return out
        if record.stream != self.stream:
            return out
        attempt = self._open.setdefault(key, _Attempt(offset))
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
            attempt.shown = True
            out.append(item)
        return out

    def _superseded(self, offset: int, step: str, attempt: int) -> list[StreamItem]:
        if attempt <= self._latest.get(step, 0):
            return []
        self._latest[step] = attempt
        older = [k for k in self._open if k[0] == step and k[1] < attempt]
        return self._void(older, "RETRIED", offset)

    def _accepted(self, key: Key) -> list[StreamItem]:
        self._over.add(key)
        attempt = self._open.pop(key, None)
        if attempt is None:
            return []
        out = list(attempt.values)
        if attempt.closing is not None:
            self.done = True
            out.append(StreamItem("closed", attempt.closing, self.stream, step=key[0]))
        return out

    def _void(self, keys: list[Key], reason: str, offset: int) -> list[StreamItem]:
        out = []
        for key in keys:
            self._over.add(key)
            attempt = self._open.pop(key)
            if attempt.shown:
                out.append(
                    StreamItem(
                        "retracted", offset, self.stream, step=key[0], attempt=key[1], reason=reason
                    )
                )
        return out


def _order(cursor: Cursor) -> tuple[int, int]:
    return (cursor.at, cursor.handed)


def _with_cursor(item: StreamItem, cursor: Cursor) -> StreamItem:
    return StreamItem(
        item.kind,
        item.offset,
        item.stream,
        item.value,
        item.step,
        item.attempt,
        item.index,
        item.reason,
        str(cursor),
    )
