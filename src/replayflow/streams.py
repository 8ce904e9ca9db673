"""Reading an instance's durable streams from any process: `handle.stream("tokens")`.

    for item in client.start("chat", {"q": "..."}).stream("tokens"):
        if item.kind == "value":
            print(item.value, end="")
        elif item.kind == "retracted":      # that attempt failed: its values are void
            ...

Items come live and in order (core/streams.py says what each kind means). A reader
that joins late reads from the start; one that restarts passes `start=` the
`resume_offset` it had and repeats nothing. `settled=True` yields only values of
attempts that completed (each once its attempt ended). Iteration ends when the stream
is closed or the instance ends; `follow=False` stops at what is written now, and
`idle_timeout` raises StreamTimeout after that many seconds without a record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from replayflow.core.errors import ReplayflowError
from replayflow.core.streams import StreamItem, StreamView
from replayflow.processors.stream_reader import StreamFollower, wait_time
from replayflow.settings import Settings

__all__ = ["AsyncStream", "Stream", "StreamItem", "StreamTimeout"]

Read = tuple[int, list[StreamItem]]  # a record's offset, and the items it made


class StreamTimeout(ReplayflowError, TimeoutError):
    """No record of the stream arrived within the idle timeout; it may go on later."""


class Stream:
    """A blocking iterator over one named stream of an instance."""

    def __init__(
        self,
        settings: Settings,
        instance_id: str,
        name: str,
        *,
        start: int = 0,
        settled: bool = False,
        follow: bool = True,
        idle_timeout: float | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.name = name
        self.follow = follow
        self.idle_timeout = idle_timeout
        self.view = StreamView(instance_id, name, settled)
        self._follower: StreamFollower | None = StreamFollower(settings, instance_id, start)
        self._position = max(start, 0)
        self._end: int | None = None if follow else self._follower.end()

    @property
    def resume_offset(self) -> int:
        """Pass as `start=` to a new reader to go on where this one stopped."""
        return self.view.resume_offset(self._position)

    @property
    def done(self) -> bool:
        return self.view.done

    def next_records(self, timeout: float | None = None) -> list[Read] | None:
        """(offset, items) of the records read within `timeout` seconds (maybe none;
        most records make one item or none); None once the stream is over (closed,
        ended, or read to its end without `follow`)."""
        follower = self._follower
        if follower is None or self.view.done:
            self.close()
            return None
        if self._end is not None and follower.caught_up(self._end):
            self.close()
            return None
        reads = [
            (offset, self.view.feed(offset, record))
            for offset, record in follower.poll(0.1 if timeout is None else timeout)
        ]
        if not self.view.done:
            # Records of other instances move the position too: nothing to show there.
            reads.append((follower.position - 1, []))
        return reads

    def next_batch(self, timeout: float | None = None) -> list[StreamItem] | None:
        """The items of next_records, in one list."""
        reads = self.next_records(timeout)
        if reads is None:
            return None
        self.shown(reads[-1][0] if reads else None)
        return [item for _, items in reads for item in items]

    def shown(self, offset: int | None) -> None:
        """Everything up to `offset` reached the caller: a resume starts after it."""
        if offset is not None:
            self._position = max(self._position, offset + 1)

    def __iter__(self) -> Iterator[StreamItem]:
        try:
            while True:
                deadline = (
                    None if self.idle_timeout is None else time.monotonic() + self.idle_timeout
                )
                while True:
                    reads = self.next_records(wait_time(deadline))
                    if reads is None:
                        return
                    if any(items for _, items in reads):
                        break
                    self.shown(reads[-1][0] if reads else None)
                    if deadline is not None and time.monotonic() >= deadline:
                        raise StreamTimeout(
                            f"stream {self.name!r} of {self.instance_id!r}: nothing "
                            f"for {self.idle_timeout:g} s"
                        )
                for offset, items in reads:
                    yield from _handed(self, offset, items)
        finally:
            self.close()

    def values(self) -> Iterator[Any]:
        """Only the values (of every attempt unless `settled`)."""
        for item in self:
            if item.kind == "value":
                yield item.value

    def __aiter__(self) -> AsyncIterator[StreamItem]:
        """`async for` over the same stream: reads run in a thread."""
        return AsyncStream(self).__aiter__()

    def close(self) -> None:
        if self._follower is not None:
            self._follower.close()
            self._follower = None

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncStream:
    """The same for asyncio code: `async for item in handle.stream(...)`; the Kafka
    reads run in a thread so the event loop never blocks."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream

    @property
    def resume_offset(self) -> int:
        return self._stream.resume_offset

    async def __aiter__(self) -> AsyncIterator[StreamItem]:
        stream = self._stream
        try:
            idle_since = time.monotonic()
            while True:
                reads = await asyncio.to_thread(stream.next_records, 0.1)
                if reads is None:
                    return
                if any(items for _, items in reads):
                    idle_since = time.monotonic()
                elif (
                    stream.idle_timeout is not None
                    and time.monotonic() - idle_since >= stream.idle_timeout
                ):
                    raise StreamTimeout(
                        f"stream {stream.name!r} of {stream.instance_id!r}: nothing "
                        f"for {stream.idle_timeout:g} s"
                    )
                for offset, items in reads:
                    for item in _handed(stream, offset, items):
                        yield item
        finally:
            await asyncio.to_thread(stream.close)

    async def values(self) -> AsyncIterator[Any]:
        async for item in self:
            if item.kind == "value":
                yield item.value

    async def aclose(self) -> None:
        await asyncio.to_thread(self._stream.close)


def _handed(stream: Stream, offset: int, items: list[StreamItem]) -> Iterator[StreamItem]:
    """The items of one record; the record counts as shown once its last item is
    handed over (a caller that stops after it resumes at the next record)."""
    if not items:
        stream.shown(offset)
    for n, item in enumerate(items):
        if n == len(items) - 1:
            stream.shown(offset)
        yield item
