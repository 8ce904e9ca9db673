"""The replay driver: runs a workflow coroutine against the calls history recorded.

Each await yields a request. When the call at that position is recorded, the driver
checks it is the same request and answers from the record; past the recorded calls it
asks the decision builder to make a new call. The same code path serves a live
coroutine kept in memory (fed one new result) and one rebuilt from its first await
after a restart or eviction, so both give the same decisions.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from replayflow.core.callseq import CallsDraft
from replayflow.core.context import (
    AllRequest,
    ChildRequest,
    Context,
    EventRequest,
    FirstRequest,
    PatchRequest,
    Request,
    Single,
    SleepRequest,
    StepRequest,
)
from replayflow.core.definitions import WorkflowDef
from replayflow.core.errors import (
    Cancelled,
    EventTimeout,
    LimitExceeded,
    NonDeterminismError,
    PayloadError,
    ReplayflowError,
    StepFailed,
)
from replayflow.core.patching import Marker, RecordedMarkers, is_marker, skippable
from replayflow.core.payloads import load
from replayflow.core.state import Call, CallKind, CallStatus, Info

NewCall = Callable[[Single | PatchRequest, str], Call]


@dataclass(frozen=True)
class Waiting:
    """The coroutine waits on calls that are not resolved yet."""


@dataclass(frozen=True)
class Returned:
    value: Any


#: BaseException by a name of this module's: compiled (setup.py), a dataclass's field
#: types are looked up among the module's globals, where builtins are not.
AnyError = BaseException


@dataclass(frozen=True)
class Raised:
    error: AnyError  # Cancelled, NonDeterminismError, or whatever the code raised


Outcome = Waiting | Returned | Raised
_WAITING = Waiting()  # it holds nothing: one for every advance that ends waiting

_FAILED = (CallStatus.FAILED, CallStatus.CANCELLED, CallStatus.TIMED_OUT)
# Tuples, not `A | B` unions: a union written in the test is built again on each await.
_AWAITABLE = (StepRequest, SleepRequest, EventRequest, ChildRequest, AllRequest, FirstRequest)
_GROUPS = (AllRequest, FirstRequest)


class Driver:
    """One instance's coroutine and its position in the recorded calls."""

    def __init__(
        self,
        workflow: WorkflowDef,
        info: Info,
        start_at: int,
        max_payload: int,
        recorded: RecordedMarkers | None = None,
    ) -> None:
        self.ctx = Context(info.instance_id, info.workflow, info.version, start_at, max_payload)
        self._input = load(info.input, "the workflow input")
        self._workflow = workflow
        self._coro: Coroutine[Any, Any, Any] | None = None
        self._position = 0  # calls consumed so far
        self._waiting: tuple[Request, list[int]] | None = None
        self._name_counts: dict[tuple[CallKind, str], int] = {}
        self.seq = -1  # the state seq this driver reflects; set by the decider
        self.finished = False
        # Patch markers (core/patching.py): the answers given in this run, what a
        # re-folded history recorded (None when folding live), and the calls and
        # call maker of the advance in progress, which ctx.patched needs.
        self._patches: dict[str, bool] = {}
        self._recorded = recorded
        self._run = (info.instance_id, info.run)
        self._calls: CallsDraft[Call] | None = None
        self._new_call: NewCall | None = None

    def advance(self, calls: CallsDraft[Call], new_call: NewCall, max_calls: int) -> Outcome:
        """Run the coroutine as far as recorded and resolved calls allow."""
        self._calls, self._new_call = calls, new_call
        try:
            return self._advance(calls, new_call, max_calls)
        finally:
            self._calls = self._new_call = None

    def _advance(self, calls: CallsDraft[Call], new_call: NewCall, max_calls: int) -> Outcome:
        if self.finished:
            return _WAITING
        if self._coro is None:
            # The hook makes driver, context and coroutine a cycle while the code runs;
            # closing or finishing breaks it, so they go by reference counting, not
            # (hundreds of thousands at a time) by the cyclic collector.
            self.ctx._patch_hook = self._patched
            self._coro = self._workflow(self.ctx, self._input)
            answer: tuple[bool, Any] | None = (True, None)
        else:
            answer = self._answer(calls)
        while answer is not None:
            ok, value = answer
            try:
                request = self._coro.send(value) if ok else self._coro.throw(value)
            except StopIteration as stop:
                return self._finish(self._unconsumed(calls, "it returned") or Returned(stop.value))
            except BaseException as exc:  # user code may raise anything; it ends the run
                return self._finish(
                    self._unconsumed(calls, f"it raised {type(exc).__name__}") or Raised(exc)
                )
            if not isinstance(request, _AWAITABLE):
                self.close()
                return self._finish(
                    Raised(
                        ReplayflowError(
                            f"a workflow may await only ctx operations, got {request!r}"
                        )
                    )
                )
            members = request.members if isinstance(request, _GROUPS) else [request]
            indices = []
            for member in members:
                key = self._key(member)
                # Live, past the recorded calls, there is nothing to catch up on.
                if self._recorded is not None or self._position < len(calls):
                    self._catch_up(calls, None)
                index = self._position
                self._position += 1
                if index < len(calls):
                    mismatch = _mismatch(calls[index], member, key)
                    if mismatch:
                        self.close()
                        return self._finish(
                            Raised(
                                NonDeterminismError(index + 1, calls[index].describe(), mismatch)
                            )
                        )
                elif index >= max_calls:
                    self.close()
                    return self._finish(
                        Raised(
                            LimitExceeded(
                                f"the instance reached its limit of {max_calls} awaits "
                                "(steps, sleeps and waits)"
                            )
                        )
                    )
                else:
                    calls.append(new_call(member, key))
                indices.append(index)
            self._waiting = (request, indices)
            answer = self._answer(calls)
        return _WAITING

    def awaiting(self) -> tuple[int, ...]:
        """Indices of the calls the coroutine awaits now, in the order it asked."""
        return tuple(self._waiting[1]) if self._waiting is not None else ()

    def close(self) -> None:
        # Closing runs the code's finally blocks; an await there has nobody to answer it,
        # and a ctx.patched there records nothing.
        self._calls = self._new_call = None
        if self._coro is not None:
            with contextlib.suppress(RuntimeError):
                self._coro.close()
            self._coro = None
        self.ctx._patch_hook = _answered(self._patches)

    def _unconsumed(self, calls: CallsDraft[Call], how: str) -> Raised | None:
        # Code that ends while history holds further calls took another path than the
        # recorded run: that is non-determinism too, not a result.
        if self._calls is not None:
            self._catch_up(calls, None)
        if self._position >= len(calls):
            return None
        recorded = calls[self._position]
        return Raised(
            NonDeterminismError(
                self._position + 1, recorded.describe(), f"no further await ({how})"
            )
        )

    # -- patch markers (core/patching.py) ------------------------------------------------

    def _patched(self, patch: str, deprecated: bool) -> bool:
        """ctx.patched(patch) (deprecated=False) or ctx.deprecate_patch(patch)."""
        known = self._patches.get(patch)
        if known is not None:
            return known  # the first answer holds for the whole run
        calls, new_call = self._calls, self._new_call
        if calls is None or new_call is None:
            return False  # the coroutine is being closed: nothing is recorded any more
        self._catch_up(calls, patch)
        index = self._position
        if index < len(calls):
            found = is_marker(calls[index], patch)
        else:
            mark: Marker | None = (
                (patch, deprecated) if self._recorded is None else self._marker(index)
            )
            found = mark is not None and mark[0] == patch
            if mark is not None and found:
                calls.append(new_call(PatchRequest(patch, deprecated=mark[1]), patch))
        if found:
            self._position += 1
        self._patches[patch] = found or deprecated
        return found or deprecated

    def _catch_up(self, calls: CallsDraft[Call], patch: str | None) -> None:
        """Pass deprecated markers of other patches than `patch` at the current position:
        skip recorded calls, and, re-folding history, make the ones the recorded run
        made (their facts are in the history being compared); a rebuild makes every
        marker the recorded run made there (RecordedMarkers.reproduce)."""
        while True:
            index = self._position
            if index < len(calls):
                if not skippable(calls[index], patch):
                    return
            else:
                mark = self._marker(index)
                if mark is None or mark[0] == patch or self._new_call is None:
                    return
                assert self._recorded is not None
                if not (mark[1] or self._recorded.reproduce):
                    return
                calls.append(self._new_call(PatchRequest(mark[0], deprecated=mark[1]), mark[0]))
            self._position += 1

    def _marker(self, index: int) -> Marker | None:
        if self._recorded is None:
            return None
        instance_id, run = self._run
        return self._recorded.marker(instance_id, run, index)

    def _finish(self, outcome: Outcome) -> Outcome:
        self.finished = True
        self._waiting = None
        self.ctx._patch_hook = _answered(self._patches)
        return outcome

    def _key(self, member: Single) -> str:
        counted = (member.kind, member.name)
        count = self._name_counts.get(counted, 0) + 1
        self._name_counts[counted] = count
        return member.name if count == 1 else f"{member.name}#{count}"

    def _answer(self, calls: CallsDraft[Call]) -> tuple[bool, Any] | None:
        """(True, value) or (False, exception) once the awaited calls resolve."""
        assert self._waiting is not None
        request, indices = self._waiting
        if len(indices) == 1 and not isinstance(request, _GROUPS):
            return self._answer_one(calls[indices[0]])  # most awaits: one call
        members = [calls[i] for i in indices]
        if isinstance(request, FirstRequest):
            return self._answer_first(members)
        if isinstance(request, AllRequest) and request.return_exceptions:
            if any(c.status.is_pending for c in members):
                return None
            self._resume(max((c.resolved_at or 0 for c in members), default=None))
            return True, [
                _exception(c) if c.status in _FAILED else load(c.result, c.describe())
                for c in members
            ]
        failures = [c for c in members if c.status in _FAILED]
        if failures:
            first = min(failures, key=lambda c: c.resolved_seq or 0)
            self._resume(first.resolved_at)
            return False, _exception(first)
        if any(c.status is not CallStatus.COMPLETED for c in members):
            return None
        self._resume(max((c.resolved_at or 0 for c in members), default=None))
        values = [load(c.result, c.describe()) for c in members]
        return True, values if isinstance(request, AllRequest) else values[0]

    def _answer_one(self, call: Call) -> tuple[bool, Any] | None:
        status = call.status
        if status is CallStatus.COMPLETED:
            self._resume(call.resolved_at or 0)  # as the general case below does
            return True, _value(call)
        if status in _FAILED:
            self._resume(call.resolved_at)
            return False, _exception(call)
        return None

    def _answer_first(self, members: list[Call]) -> tuple[bool, Any] | None:
        resolved = [
            (c.resolved_seq or 0, position, c)
            for position, c in enumerate(members)
            if not c.status.is_pending
        ]
        if not resolved:
            return None
        _, position, winner = min(resolved)
        self._resume(winner.resolved_at)
        if winner.status in _FAILED:
            return False, _exception(winner)
        return True, (position, load(winner.result, winner.describe()))

    def _resume(self, at: int | None) -> None:
        self._waiting = None
        if at is not None:
            self.ctx._set_now(at)


def _answered(patches: dict[str, bool]) -> Callable[[str, bool], bool]:
    """ctx.patched once the code no longer runs, as Driver._patched answers outside an
    advance (the run's first answer, else False), without holding the driver."""
    return lambda patch, deprecated: patches.get(patch, False)


def _mismatch(recorded: Call, member: Single, key: str) -> str | None:
    asked = f"{member.kind.value} {key!r}"
    if recorded.kind is not member.kind or recorded.key != key:
        return asked
    if isinstance(member, ChildRequest) and recorded.function != member.workflow:
        return f"{asked} of workflow {member.workflow!r} (history: {recorded.function!r})"
    if isinstance(member, StepRequest) and recorded.function != member.function:
        return f"{asked} running {member.function!r} (history: {recorded.function!r})"
    return None


def _value(call: Call) -> Any:
    """A completed call's result, as load(call.result, call.describe()) reads it: the
    description names the call in an error only, so it is made then, not every time."""
    try:
        return load(call.result, "")
    except PayloadError:
        return load(call.result, call.describe())  # the same error, naming the call


def _exception(call: Call) -> BaseException:
    if call.status is CallStatus.CANCELLED:
        return Cancelled(call.error.message if call.error else "")
    if call.status is CallStatus.TIMED_OUT:
        return EventTimeout(call.key)
    assert call.error is not None
    return StepFailed(call.key, call.error, call.attempt - call.first_attempt + 1)


class DriverCache:
    """Live coroutines of running instances, least recently used evicted first. A miss
    costs a rebuild from recorded calls, never a different decision."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._drivers: OrderedDict[str, Driver] = OrderedDict()

    def take(self, instance_id: str, seq: int) -> Driver | None:
        driver = self._drivers.pop(instance_id, None)
        if driver is None:
            return None
        if driver.seq == seq and not driver.finished:
            return driver
        driver.close()  # stale: run its finally blocks now, not whenever GC gets to it
        return None

    def put(self, instance_id: str, driver: Driver) -> None:
        if self._size <= 0 or driver.finished:
            driver.close()
            return
        self._drivers[instance_id] = driver
        if len(self._drivers) > self._size:
            _, evicted = self._drivers.popitem(last=False)
            evicted.close()

    def retag(self, instance_id: str, seq: int, new_seq: int) -> None:
        """The instance moved from `seq` to `new_seq` without anything the coroutine
        awaits changing (an event kept for later, a retry scheduled): keep the driver."""
        driver = self._drivers.get(instance_id)
        if driver is not None and driver.seq == seq:
            driver.seq = new_seq

    def drop(self, instance_id: str) -> None:
        driver = self._drivers.pop(instance_id, None)
        if driver is not None:
            driver.close()

    def clear(self) -> None:
        for driver in self._drivers.values():
            driver.close()
        self._drivers.clear()

    def __len__(self) -> int:
        return len(self._drivers)
