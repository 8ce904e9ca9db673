"""The threads that run the worker's plain (synchronous) step functions.

A plain function may block (a database call, an HTTP request), so it runs off the event
loop, on one of up to `size` threads. `loop.run_in_executor` does that through a
concurrent.futures.Future (a lock and a condition variable each), an asyncio future
chained to it, and one wake-up of the loop per call: with hundreds of short steps in
flight that cost the worker more CPU than the steps themselves (benchmarks/steps_pool.py
measures both). Here a call is an asyncio future and a queue entry: the thread that
ran it puts the outcome on a list, and the loop is woken once for every outcome that
arrived since its last wake-up, however many.

A call whose future was cancelled meanwhile (a step's timeout) runs to its end on its
thread (a thread cannot be stopped) and its outcome is dropped. `close()` cancels the
calls not yet begun; the threads end after the call they are in.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

_Call = tuple["asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class StepThreads:
    def __init__(self, size: int, name: str = "replayflow-step") -> None:
        if size < 1:
            raise ValueError(f"a worker needs at least one step thread, not {size}")
        self.size = size
        self.name = name
        self._calls: SimpleQueue[_Call | None] = SimpleQueue()
        self._outcomes: deque[tuple[asyncio.Future[Any], bool, Any]] = deque()
        self._lock = threading.Lock()
        self._pending = 0  # calls handed over and not yet returned
        self._waking = False  # the loop has a wake-up coming that reads _outcomes
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def run(self, function: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """`function(*args)` on a step thread; the future is the running loop's."""
        if self._closed:
            raise RuntimeError("the step threads are closed")
        loop = asyncio.get_running_loop()
        self._loop = loop
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._pending += 1
            # A thread more while calls outnumber threads: each call has its own, as
            # long as there are fewer than `size` (then calls queue for one).
            start = self._pending > len(self._threads) < self.size
        self._calls.put((future, function, args))
        if start:
            thread = threading.Thread(
                target=self._serve, name=f"{self.name}_{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        return future

    def close(self) -> None:
        """Cancel the calls not begun; each thread ends once its call returns."""
        self._closed = True
        while not self._calls.empty():
            call = self._calls.get_nowait()
            if call is not None:
                call[0].cancel()
        for _ in self._threads:
            self._calls.put(None)

    def _serve(self) -> None:
        calls = self._calls
        while True:
            call = calls.get()
            if call is None:
                return
            future, function, args = call
            try:
                outcome: tuple[asyncio.Future[Any], bool, Any] = (future, True, function(*args))
            except BaseException as exc:  # handed to the awaiting step, as an executor does
                outcome = (future, False, exc)
            self._outcomes.append(outcome)
            with self._lock:
                self._pending -= 1
                if self._waking:
                    continue  # the wake-up on its way reads this outcome too
                self._waking = True
            self._wake()

    def _wake(self) -> None:
        loop = self._loop
        if loop is None:
            return
        # A closed loop raises RuntimeError: nobody waits for these outcomes any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._hand_over)

    def _hand_over(self) -> None:
        """On the loop: every outcome that arrived since the last wake-up."""
        with self._lock:
            self._waking = False  # before reading: a later outcome wakes the loop again
        outcomes = self._outcomes
        while outcomes:
            future, ok, value = outcomes.popleft()
            if future.done():
                continue  # cancelled meanwhile (a step's timeout)
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
