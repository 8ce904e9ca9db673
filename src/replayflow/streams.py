"""Reading an instance's durable streams from any process: `handle.stream("tokens")`.

    for item in client.start("chat", {"q": "..."}).stream("tokens"):
        if item.kind == "value":
            print(item.value, end="")
        elif item.kind == "retracted":      # that attempt failed: its values are void
            ...

Items come live and in order (core/stream_view.py says what each kind means). A reader
that joins late reads from the start; one that stops passes its `cursor` (or the last
item's `cursor`) as `start=` to a new reader, which goes on after it and repeats
nothing. `settled=True` yields only values of attempts whose result the engine
accepted (each once it did). Iteration ends when the stream is closed or the instance
ends; `follow=False` stops at what is written now, and `idle_timeout` raises
StreamTimeout after that many seconds without a record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from replayflow.core.errors import ReplayflowError
from replayflow.core.streams import Cursor, StreamItem, StreamView
from replayflow.processors.stream_reader import StreamFollower, wait_time
from replayflow.settings import Settings

__all__ = ["AsyncStream", "Cursor", "Stream", "StreamItem", "StreamTimeout"]


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
        start: int | str | Cursor = 0,
        settled: bool = False,
        follow: bool = True,
        idle_timeout: float | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.name = name
        self.follow = follow
        self.idle_timeout = idle_timeout
        self.view = StreamView(instance_id, name, settled, start)
        self._cursor = str(self.view.resumed)
        self._follower: StreamFollower | None = StreamFollower(
            settings, instance_id, self.view.start
        )
        self._end: int | None = None if follow else self._follower.end()

    @property
    def cursor(self) -> str:
        """Where this reader stands: pass it as `start=` to a new reader to go on after
        the last item handed over, with nothing repeated and nothing missed."""
        return self._cursor

    @property
    def done(self) -> bool:
        return self.view.done

    def next_batch(self, timeout: float | None = None) -> list[StreamItem] | None:
        """The items of the records read within `timeout` seconds (maybe none), all
        counted as handed over; None once the stream is over (closed, ended, or read to
        its end without `follow`)."""
        taken = self._take(0.1 if timeout is None else timeout)
        if taken is None:
            return None
        items, self._cursor = taken
        return items

    def _take(self, timeout: float) -> tuple[list[StreamItem], str] | None:
        """The items read within `timeout`, and the cursor once they are all handed
        over; the reader's own cursor does not move."""
        follower = self._follower
        if follower is None or self.view.done:
            self.close()
            return None
        if self._end is not None and follower.caught_up(self._end):
            self.close()
            return None
        items = [
            item
            for offset, record in follower.poll(timeout)
            for item in self.view.feed(offset, record)
        ]
        # Records of other instances move the position too: nothing to show there.
        after = self._cursor
        if follower.position > 0:
            after = str(self.view.cursor_after(follower.position - 1))
        return items, after

    def _hand_over(self, items: list[StreamItem], after: str) -> Iterator[StreamItem]:
        # A caller that stops after an item goes on right after it: the cursor moves
        # before the item is handed over.
        for item in items:
            self._cursor = item.cursor
            yield item
        self._cursor = after

    def __iter__(self) -> Iterator[StreamItem]:
        try:
            while True:
                deadline = (
                    None if self.idle_timeout is None else time.monotonic() + self.idle_timeout
                )
                while True:
                    taken = self._take(wait_time(deadline))
                    if taken is None:
                        return
                    items, after = taken
                    if items:
                        break
                    self._cursor = after
                    if deadline is not None and time.monotonic() >= deadline:
                        raise _timeout(self)
                yield from self._hand_over(items, after)
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
    def cursor(self) -> str:
        return self._stream.cursor

    @property
    def done(self) -> bool:
        return self._stream.done

    async def __aiter__(self) -> AsyncIterator[StreamItem]:
        stream = self._stream
        try:
            idle_since = time.monotonic()
            while True:
                taken = await asyncio.to_thread(stream._take, 0.1)
                if taken is None:
                    return
                items, after = taken
                if items:
                    idle_since = time.monotonic()
                elif (
                    stream.idle_timeout is not None
                    and time.monotonic() - idle_since >= stream.idle_timeout
                ):
                    stream._cursor = after
                    raise _timeout(stream)
                for item in stream._hand_over(items, after):
                    yield item
        finally:
            await asyncio.to_thread(stream.close)

    async def values(self) -> AsyncIterator[Any]:
        async for item in self:
            if item.kind == "value":
                yield item.value

    async def aclose(self) -> None:
        await asyncio.to_thread(self._stream.close)


def _timeout(stream: Stream) -> StreamTimeout:
    return StreamTimeout(
        f"stream {stream.name!r} of {stream.instance_id!r}: nothing for {stream.idle_timeout:g} s"
    )
