"""Running one step attempt, the same way in the test engine and in Kafka workers."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from replayflow.core.definitions import StepDef
from replayflow.core.errors import PayloadError, error_info
from replayflow.core.messages import CompleteStep, ErrorInfo, FailStep, Task
from replayflow.core.payloads import DEFAULT_MAX_PAYLOAD, dump, load
from replayflow.core.streams import AttemptStreams, StepStream, StreamSink


@dataclass(frozen=True)
class StepContext:
    """What a running step may know about itself: rf.current_step()."""

    instance_id: str
    workflow: str
    step: str
    attempt: int
    idempotency_key: str  # the same for every attempt of this step
    streams: AttemptStreams | None = field(default=None, compare=False, repr=False)

    def stream(self, name: str) -> StepStream:
        """A named stream of this instance, written by this attempt: callers read its
        values live (handle.stream(name)); values of an attempt that fails are marked."""
        if self.streams is None:
            raise RuntimeError("this step runs where no stream sink was given")
        return self.streams.stream(name)


_current: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "replayflow_step", default=None
)


def current_step() -> StepContext:
    """The step attempt running now; raises outside a step."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("rf.current_step() is only available while a step runs")
    return ctx


def _now_ms() -> int:
    return int(time.time() * 1000)


def _context(task: Task, sink: StreamSink | None) -> StepContext:
    streams = None
    if sink is not None:
        streams = AttemptStreams(sink, task.instance_id, task.step, task.attempt, _now_ms)
    return StepContext(
        instance_id=task.instance_id,
        workflow=task.workflow,
        step=task.step,
        attempt=task.attempt,
        idempotency_key=task.idempotency_key,
        streams=streams,
    )


def _ended(context: StepContext, outcome: CompleteStep | FailStep) -> CompleteStep | FailStep:
    # The end marker goes after the attempt's last value and before its result; a result
    # that says it streamed makes the orchestrator mark the attempt accepted when it is.
    if context.streams is None:
        return outcome
    wrote = context.streams.end(isinstance(outcome, CompleteStep))
    if wrote and isinstance(outcome, CompleteStep):
        return dataclasses.replace(outcome, streamed=True)
    return outcome


def _arguments(task: Task) -> tuple[list[Any], dict[str, Any]]:
    data = load(task.input, f"the input of step {task.step!r}")
    return list(data.get("args", [])), dict(data.get("kwargs", {}))


def _result(task: Task, value: Any, max_payload: int) -> CompleteStep | FailStep:
    try:
        text = dump(value, f"the result of step {task.step!r}", max_payload)
    except PayloadError as exc:
        return _failed(task, error_info(exc, retryable=False))
    return CompleteStep(
        instance_id=task.instance_id, step=task.step, attempt=task.attempt, result=text
    )


def _failed(task: Task, error: ErrorInfo) -> FailStep:
    return FailStep(instance_id=task.instance_id, step=task.step, attempt=task.attempt, error=error)


def unknown_step(task: Task) -> FailStep:
    return _failed(
        task,
        ErrorInfo(
            type="UnknownStep",
            retryable=True,
            message=(f"no step function {task.function!r} is registered in this worker"),
        ),
    )


def run_sync(
    step: StepDef,
    task: Task,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    sink: StreamSink | None = None,
) -> CompleteStep | FailStep:
    """Run a plain-function step (in the caller's thread). Stream writes go to `sink`."""
    context = _context(task, sink)
    token = _current.set(context)
    try:
        args, kwargs = _arguments(task)
        value = step.fn(*args, **kwargs)
        if asyncio.iscoroutine(value):
            value = asyncio.run(value)
    except Exception as exc:  # a step's failure is data, reported to the fold
        return _ended(context, _failed(task, error_info(exc, source=True)))
    finally:
        _current.reset(token)
    return _ended(context, _result(task, value, max_payload))


async def run_async(
    step: StepDef,
    task: Task,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    sink: StreamSink | None = None,
) -> CompleteStep | FailStep:
    """Run an async step on the running loop. Stream writes go to `sink`."""
    context = _context(task, sink)
    token = _current.set(context)
    try:
        args, kwargs = _arguments(task)
        value = await step.fn(*args, **kwargs)
    except Exception as exc:
        return _ended(context, _failed(task, error_info(exc, source=True)))
    finally:
        _current.reset(token)
    return _ended(context, _result(task, value, max_payload))
