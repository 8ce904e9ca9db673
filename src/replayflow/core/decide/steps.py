"""Results of step attempts (and of children, which report like steps). Only the
current attempt's first result counts: duplicates, stragglers and late results change
nothing."""

from __future__ import annotations

from replayflow.core.decide.attempts import fail_attempt
from replayflow.core.decide.calls import attempt_timeout, current_attempt
from replayflow.core.decide.runner import Runner
from replayflow.core.decision import Decision, DecisionBuilder
from replayflow.core.errors import PayloadError
from replayflow.core.evolve import evolve_with
from replayflow.core.messages import CompleteStep, ErrorInfo, FailStep, StepCompleted
from replayflow.core.payloads import check_size, load
from replayflow.core.state import CallStatus, InstanceState


def complete_step(r: Runner, state: InstanceState | None, cmd: CompleteStep, now: int) -> Decision:
    call = current_attempt(state, cmd.step, cmd.attempt)
    if state is None or call is None:
        return Decision(state=state)  # duplicate, straggler or late: changes nothing
    what = f"the result of step {cmd.step!r}"
    try:
        check_size(cmd.result, what, r.limits.max_payload)
        load(cmd.result, what)
    except PayloadError as exc:
        return fail_step(
            r,
            state,
            FailStep(
                instance_id=cmd.instance_id,
                step=cmd.step,
                attempt=cmd.attempt,
                error=ErrorInfo(type="PayloadError", message=str(exc), retryable=False),
            ),
            now,
        )
    b = DecisionBuilder.from_state(state, now)
    seq = b.emit(StepCompleted, step=call.key, attempt=call.attempt, result=cmd.result)
    if b.timers:  # (most steps have no timeout: no timer id to make and look for)
        b.cancel_timer(attempt_timeout(call.key, call.attempt))
    b.put_call(
        evolve_with(
            call,
            {
                "status": CallStatus.COMPLETED,
                "result": cmd.result,
                "resolved_seq": seq,
                "resolved_at": now,
            },
        )
    )
    return r.run(b, r.workflow_of(state.info))


def fail_step(r: Runner, state: InstanceState | None, cmd: FailStep, now: int) -> Decision:
    call = current_attempt(state, cmd.step, cmd.attempt)
    if state is None or call is None:
        return Decision(state=state)
    b = DecisionBuilder.from_state(state, now)
    b.cancel_timer(attempt_timeout(call.key, call.attempt))
    fail_attempt(b, call, cmd.error)
    return r.run(b, r.workflow_of(state.info))
