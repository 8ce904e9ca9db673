"""Deadlines for Kafka calls that can block past their own timeout.

librdkafka's transactional calls take a timeout but do not always keep it. After a
broker restart `send_offsets_to_transaction` can wait forever for the group
coordinator (librdkafka issue #5456: the coordinator request's timeout is never
checked; #5511: a decommissioned coordinator stays cached), and commit, abort and
init_transactions have been reported blocking the same way. A C call that does not
return cannot be interrupted from Python, so each such call runs on a helper thread of
its client while the caller waits until a deadline. When the deadline passes the
caller gives up on the call *and on the client*: the guard is marked dead, every later
call through it raises at once, and the owner builds a new client. For a
transactional producer that is safe: a new producer with the same transactional.id
fences the old one, so nothing the abandoned call may still do can commit.

    guard = Guard("orchestrator producer")
    guard.run("commit_transaction", 7.0, producer.commit_transaction, 5.0)  # or Hung

The helper thread is a daemon: a call stuck in C for good never keeps the process
from exiting.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from replayflow.core.errors import ReplayflowError

T = TypeVar("T")

#: Seconds a guarded call may take beyond the timeout it passes to librdkafka.
GRACE = 2.0


class Hung(ReplayflowError, TimeoutError):
    """A Kafka call did not return by its deadline. The client it ran on is dead and
    must be replaced; the call itself may still be running on its helper thread."""


class _Call:
    __slots__ = ("args", "done", "error", "finished_at", "function", "result", "started")

    def __init__(self, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.function = function
        self.args = args
        self.started = threading.Event()
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished_at = 0.0  # time.time() when it returned or raised


class Pending:
    """A call begun on a guard's helper thread while its caller works on; `wait()`
    gives its result or exception, or Hung after the deadline counted from its start."""

    def __init__(self, guard: Guard, what: str, deadline: float, call: _Call) -> None:
        self._guard, self._what, self._call = guard, what, call
        self._until = time.monotonic() + deadline
        self._deadline = deadline

    @property
    def finished_at(self) -> float:
        """When the call returned or raised (time.time()), once it has."""
        return self._call.finished_at

    def wait(self) -> Any:
        call = self._call
        if not call.done.wait(max(0.0, self._until - time.monotonic())):
            return self._guard._hung(self._what, self._deadline)
        if call.error is not None:
            raise call.error
        return call.result


class Guard:
    """Runs the blocking calls of one client, one at a time, on one helper thread, each
    with a deadline. Dead after the first call that overran it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dead: str | None = None  # why, once a call hung
        self.running = False  # a call is on the helper thread now (a hung one, say)
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._serve, name=f"replayflow-guard-{name}", daemon=True
        )
        self._thread.start()

    def run(self, what: str, deadline: float, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)`'s result or exception; Hung when it has not returned after
        `deadline` seconds (or when an earlier call hung)."""
        if self.dead is not None:
            raise Hung(f"{self.name} is dead: {self.dead}")
        call = _Call(function, args)
        self._calls.put(call)
        if not call.done.wait(deadline):
            self._hung(what, deadline)
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[no-any-return]

    def start(
        self, what: str, deadline: float, function: Callable[..., Any], *args: Any
    ) -> Pending:
        """Begin `function(*args)` on the helper thread and return once it runs there
        (so it holds the GIL no longer than a call into C takes to release it): the
        caller works meanwhile and then waits for the outcome with `Pending.wait()`."""
        if self.dead is not None:
            raise Hung(f"{self.name} is dead: {self.dead}")
        call = _Call(function, args)
        self._calls.put(call)
        pending = Pending(self, what, deadline, call)
        call.started.wait(deadline)
        return pending

    def _hung(self, what: str, deadline: float) -> Any:
        self.dead = f"{what} did not return within {deadline:g} s"
        self._calls.put(None)  # the thread ends if the stuck call ever returns
        raise Hung(f"{self.name}: {self.dead}")

    def close(self) -> None:
        """End the helper thread once the calls queued before are done."""
        self._calls.put(None)

    def _serve(self) -> None:
        while True:
            call = self._calls.get()
            if call is None:
                return
            self.running = True
            call.started.set()
            try:
                call.result = call.function(*call.args)
            except BaseException as exc:  # handed to the caller, whatever it is
                call.error = exc
            finally:
                self.running = False
                call.finished_at = time.time()
                call.done.set()


def guarded(what: str, deadline: float, function: Callable[..., T], *args: Any) -> T:
    """One call under a deadline on a helper thread of its own; Hung when it overran."""
    guard = Guard(what)
    try:
        return guard.run(what, deadline, function, *args)
    finally:
        guard.close()
