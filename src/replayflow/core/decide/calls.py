"""Finding calls in an instance's state, and the timer ids that name what a timer is for.

workflow/timeout              the whole instance's timeout
step/<key>/timeout/<attempt>  one attempt's timeout
step/<key>/retry/<attempt>    the backoff after a failed attempt
sleep/<index>                 ctx.sleep
event/<index>/timeout         wait_for_event's timeout
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from replayflow.core.decision import DecisionBuilder
from replayflow.core.messages import CallDropped
from replayflow.core.state import Call, CallKind, CallStatus, InstanceState, Status

WORKFLOW_TIMEOUT = "workflow/timeout"
SHORT_SLEEP_MS = 60_000  # a sleep this short (a retry backoff, a poll) keeps the coroutine


def attempt_timeout(key: str, attempt: int) -> str:
    return f"step/{key}/timeout/{attempt}"


def retry_timer(key: str, attempt: int) -> str:
    return f"step/{key}/retry/{attempt}"


def sleep_timer(index: int) -> str:
    return f"sleep/{index}"


def wait_timeout(index: int) -> str:
    return f"event/{index}/timeout"


def soon(call: Call, now: int) -> bool:
    """Whether an awaited call is likely to resolve soon: a step or child out, or a
    short sleep. Instances awaiting only long sleeps or events leave the cache."""
    if call.kind in (CallKind.STEP, CallKind.CHILD):
        return True
    return call.kind is CallKind.SLEEP and (call.deadline or 0) - now <= SHORT_SLEEP_MS


def find_step(calls: Sequence[Call], key: str) -> Call | None:
    # Pending steps sit near the end, where the workflow currently waits.
    for call in reversed(calls):
        if call.kind in (CallKind.STEP, CallKind.CHILD) and call.key == key:
            return call
    return None


def current_attempt(state: InstanceState | None, key: str, attempt: int) -> Call | None:
    """The step call a result may resolve: running, and this very attempt."""
    # Paused and suspended instances still record results, so a resume loses no work.
    if state is None or state.status not in (Status.RUNNING, Status.PAUSED, Status.SUSPENDED):
        return None
    call = find_step(state.calls, key)
    if call is None or call.status is not CallStatus.SCHEDULED or call.attempt != attempt:
        return None
    return call


def event_name(call: Call) -> str:
    return call.key.partition("#")[0]  # names cannot hold '#'


def record_dropped(b: DecisionBuilder, calls: Iterable[Call], cause: str) -> None:
    """Record the calls that will never resolve with a result, so the read side need
    not work out which ones an ending, a cancel or a restart left behind."""
    for call in calls:
        b.emit(CallDropped, kind=call.kind.value, key=call.key, index=call.index, cause=cause)
