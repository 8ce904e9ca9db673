"""A fired timer: the workflow's timeout, a step attempt's timeout or backoff, a sleep,
or an event wait's timeout. The timer id says which (see calls.py)."""

from __future__ import annotations

from replayflow.core.decide.attempts import fail_attempt, schedule_attempt
from replayflow.core.decide.calls import WORKFLOW_TIMEOUT, find_step
from replayflow.core.decide.runner import Runner
from replayflow.core.decision import Decision, DecisionBuilder
from replayflow.core.evolve import evolve
from replayflow.core.messages import ErrorInfo, FireTimer, TimerFired, WorkflowTimedOut
from replayflow.core.state import CallStatus, InstanceState, Status


def fire_timer(r: Runner, state: InstanceState | None, cmd: FireTimer, now: int) -> Decision:
    if state is None or state.status.is_final:
        return Decision(state=state)
    if cmd.timer not in dict(state.info.timers):
        return Decision(state=state)  # cancelled or fired already
    b = DecisionBuilder.from_state(state, now)
    b.drop_fired_timer(cmd.timer)
    seq = b.emit(TimerFired, timer=cmd.timer)
    parts = cmd.timer.split("/")
    if cmd.timer == WORKFLOW_TIMEOUT:
        r.end(b, Status.TIMED_OUT, WorkflowTimedOut, {})
        return b.build()
    if parts[0] == "step":
        key, purpose, attempt = "/".join(parts[1:-2]), parts[-2], int(parts[-1])
        call = find_step(b.calls, key)
        if call is None or call.attempt != attempt:
            return r.build_unawaited(b)
        if purpose == "retry" and call.status is CallStatus.BACKOFF:
            if state.status in (Status.PAUSED, Status.SUSPENDED):
                return b.build()  # no new attempt now; resume dispatches it
            schedule_attempt(b, evolve(call, attempt=attempt + 1))
            return r.build_unawaited(b)
        if purpose == "timeout" and call.status is CallStatus.SCHEDULED:
            timeout = call.timeout_ms or 0
            fail_attempt(
                b,
                call,
                ErrorInfo(
                    type="StepTimeout",
                    retryable=True,
                    message=f"attempt {attempt} did not report within {timeout} ms",
                ),
            )
    elif parts[0] == "sleep":
        call = b.calls[int(parts[1])]
        if call.status is CallStatus.WAITING:
            b.put_call(
                evolve(
                    call,
                    status=CallStatus.COMPLETED,
                    result="null",
                    resolved_seq=seq,
                    resolved_at=now,
                )
            )
    elif parts[0] == "event":
        call = b.calls[int(parts[1])]
        if call.status is CallStatus.WAITING:
            b.put_call(evolve(call, status=CallStatus.TIMED_OUT, resolved_seq=seq, resolved_at=now))
    return r.run(b, r.workflow_of(state.info))
