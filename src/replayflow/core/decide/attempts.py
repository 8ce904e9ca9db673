"""Step attempts: a new step call with its policies, scheduling an attempt, and what a
failed attempt leads to (a backoff and a retry, or the step's failure)."""

from __future__ import annotations

from replayflow.core.context import UNSET, StepRequest
from replayflow.core.decide.calls import attempt_timeout, retry_timer
from replayflow.core.decision import DecisionBuilder
from replayflow.core.definitions import Registry
from replayflow.core.evolve import evolve
from replayflow.core.messages import ErrorInfo, StepFailed, StepScheduled, Task
from replayflow.core.policy import DEFAULT_RETRY, Retry
from replayflow.core.state import Call, CallKind, CallStatus


def new_step(b: DecisionBuilder, registry: Registry, member: StepRequest, key: str) -> Call:
    """The call for a step the code asked for, with its first attempt scheduled."""
    retry, timeout_ms = step_policies(registry, member)
    first = b.info.attempt_base + 1
    call = Call(
        index=len(b.calls),
        kind=CallKind.STEP,
        key=key,
        status=CallStatus.SCHEDULED,
        function=member.function,
        input=member.input,
        retry=retry,
        timeout_ms=timeout_ms,
        attempt=first,
        first_attempt=first,
    )
    return schedule_attempt(b, call, append=False)


def step_policies(registry: Registry, member: StepRequest) -> tuple[Retry, int | None]:
    """A step called by name gets the retry and timeout it was declared with."""
    declared = registry.step(member.function)
    retry = member.retry or (declared.retry if declared else DEFAULT_RETRY)
    timeout_ms = member.timeout_ms
    if timeout_ms == UNSET:
        timeout_ms = declared.timeout_ms if declared else None
    return retry, timeout_ms


def schedule_attempt(b: DecisionBuilder, call: Call, append: bool = True) -> Call:
    """Send attempt `call.attempt` to the workers, with its timeout timer."""
    b.emit(
        StepScheduled,
        step=call.key,
        function=call.function,
        attempt=call.attempt,
        input=call.input,
        timeout_ms=call.timeout_ms,
        max_attempts=(call.retry or DEFAULT_RETRY).limit,
    )
    b.tasks.append(
        Task(
            instance_id=b.info.instance_id,
            workflow=b.info.workflow,
            step=call.key,
            function=call.function,
            attempt=call.attempt,
            input=call.input,
            scheduled_at=b.now,
            timeout_ms=call.timeout_ms,
        )
    )
    if call.timeout_ms is not None:
        b.set_timer(attempt_timeout(call.key, call.attempt), b.now + call.timeout_ms)
    if call.status is not CallStatus.SCHEDULED:  # a new step's call is made so already
        call = evolve(call, status=CallStatus.SCHEDULED)
    if append:
        b.put_call(call)
    else:
        b.changed_calls.add(call.index)
    return call


def fail_attempt(b: DecisionBuilder, call: Call, error: ErrorInfo) -> None:
    """A retryable failure with attempts left waits out a backoff; otherwise the step
    has failed."""
    retry = call.retry or DEFAULT_RETRY
    used = call.attempt - call.first_attempt + 1
    if error.retryable and used < retry.limit:
        due = b.now + retry.delay_ms(used, f"{b.info.instance_id}/{call.key}")
        b.emit(StepFailed, step=call.key, attempt=call.attempt, error=error, retry_at=due)
        b.set_timer(retry_timer(call.key, call.attempt), due)
        b.put_call(evolve(call, status=CallStatus.BACKOFF, error=error))
        return
    seq = b.emit(StepFailed, step=call.key, attempt=call.attempt, error=error, retry_at=None)
    b.put_call(
        evolve(call, status=CallStatus.FAILED, error=error, resolved_seq=seq, resolved_at=b.now)
    )
