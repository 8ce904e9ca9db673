"""One root exception, split into what a workflow author meets and what operators meet.

Exceptions that carry meaning across the log (StepFailed, EventTimeout, Cancelled) are
rebuilt from recorded facts on replay, so they hold only data that history records.
"""

from __future__ import annotations

import json
import traceback
from typing import Any

from replayflow.core.messages import ErrorInfo

#: Characters of a traceback kept in a recorded error: its tail (the frames nearest the
#: raise), so a deep recursion cannot grow a history record without bound.
MAX_TRACEBACK = 8000


class ReplayflowError(Exception):
    """Root of every error replayflow raises."""


class ValidationError(ReplayflowError, ValueError):
    """Bad input at a boundary: a name, an id, a payload, a duration, a definition."""


class PayloadError(ValidationError):
    """A value that is not JSON, or JSON larger than the payload limit."""


class LimitExceeded(ReplayflowError):
    """An instance went past a configured limit (steps per instance, payload size)."""


class NonRetryableError(ReplayflowError):
    """Raise from a step to fail it at once: retrying will not help."""


class StepFailed(ReplayflowError):
    """Raised in a workflow when a step has failed for good (attempts used up, a
    non-retryable error, or a timeout on the last attempt). Catch it to compensate."""

    def __init__(self, step: str, error: ErrorInfo, attempts: int) -> None:
        super().__init__(
            f"step {step!r} failed after {attempts} attempt(s): {error.type}: {error.message}"
        )
        self.step = step
        self.error = error
        self.attempts = attempts


class EventTimeout(ReplayflowError):
    """Raised in a workflow when wait_for_event's timeout passes first."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no event {name!r} arrived before the timeout")
        self.name = name


class Cancelled(ReplayflowError):
    """Raised in a workflow at its current await when the instance is cancelled.
    Cleanup steps may run after catching it; re-raise (or let it go) to end cancelled."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(f"cancelled: {reason}" if reason else "cancelled")
        self.reason = reason


class NonDeterminismError(ReplayflowError):
    """Replayed code asked for something other than what history recorded at that point.
    The instance is suspended, never continued down the wrong path."""

    def __init__(self, position: int, recorded: str, requested: str) -> None:
        super().__init__(
            f"non-determinism at await #{position}: history holds {recorded}, "
            f"the code asked for {requested}"
        )
        self.position = position
        self.recorded = recorded
        self.requested = requested


class WorkflowError(ReplayflowError):
    """A result was asked for an instance that did not complete successfully.

    Raised through `workflow_error()`, it is also an instance of the replayflow error
    that ended the workflow, when there was one: `except rf.EventTimeout` catches an
    instance that failed on an event timeout, `except rf.StepFailed` one whose step
    failed, `except rf.Cancelled` a cancelled one."""

    def __init__(self, instance_id: str, status: str, error: ErrorInfo | None) -> None:
        detail = f": {error.type}: {error.message}" if error else ""
        # Not super(): in a subclass that is also the ending's own error class (see
        # workflow_error) the next __init__ would be that class's.
        ReplayflowError.__init__(self, f"instance {instance_id!r} ended {status}{detail}")
        self.instance_id = instance_id
        self.status = status
        self.error = error
        self.traceback = traceback_of(error)
        #: The replayflow exception that ended the instance, rebuilt from its record.
        self.cause: ReplayflowError | None = None


class CommandRejected(ReplayflowError):
    """The orchestrator (or the check before sending) refused a command: `kind` says
    why in one word (UnknownWorkflow, UnknownInstance, Invalid, Conflict, ...)."""

    def __init__(self, instance_id: str, command: str, reason: str, kind: str = "Rejected"):
        super().__init__(reason)
        self.instance_id = instance_id
        self.command = command
        self.reason = reason
        self.kind = kind
        #: The position of the refused command among those sent together, if several.
        self.index: int | None = None


class UnknownWorkflow(CommandRejected, LookupError):
    """A start named a workflow (or version) that no orchestrator runs."""


class UnknownInstance(CommandRejected, LookupError):
    """A command named an instance that does not exist."""


def rejection(instance_id: str, command: str, reason: str, kind: str) -> CommandRejected:
    """The exception for a refused command, by the kind the refusal carries."""
    cls = {"UnknownWorkflow": UnknownWorkflow, "UnknownInstance": UnknownInstance}.get(
        kind, CommandRejected
    )
    return cls(instance_id, command, reason, kind)


def error_info(
    exc: BaseException, retryable: bool | None = None, source: bool = False
) -> ErrorInfo:
    """The recorded form of an exception raised by user code, with its traceback (the
    last MAX_TRACEBACK characters) in `details`. `source` adds each frame's line of code
    (it reads source files: for workers, not for the fold, which must not do I/O)."""
    if retryable is None:
        retryable = not isinstance(exc, NonRetryableError | PayloadError)
    trace = format_traceback(exc, source)
    if isinstance(exc, StepFailed):
        # The step's own error stays readable by machines, not only inside the message.
        cause: dict[str, Any] = {"type": exc.error.type, "message": exc.error.message}
        cause_trace = traceback_of(exc.error)
        if cause_trace:
            cause["traceback"] = cause_trace
        details: dict[str, Any] = {"step": exc.step, "attempts": exc.attempts, "cause": cause}
        if trace:
            details["traceback"] = trace
        return ErrorInfo(
            type="StepFailed", message=str(exc), retryable=False, details=json.dumps(details)
        )
    # An exception may carry structured details as JSON text (e.g. an RFC 7807 problem):
    # kept as they are.
    own = getattr(exc, "details", None)
    if isinstance(own, str):
        return ErrorInfo(
            type=type(exc).__name__, message=str(exc), retryable=retryable, details=own
        )
    details = _kind_details(exc)
    if trace:
        details["traceback"] = trace
    return ErrorInfo(
        type=type(exc).__name__,
        message=str(exc),
        retryable=retryable,
        details=json.dumps(details) if details else None,
    )


def _kind_details(exc: BaseException) -> dict[str, Any]:
    """What rebuilds a replayflow exception from its record (see `rebuild`)."""
    if isinstance(exc, EventTimeout):
        return {"event": exc.name}
    if isinstance(exc, Cancelled):
        return {"reason": exc.reason}
    if isinstance(exc, NonDeterminismError):
        return {"position": exc.position, "recorded": exc.recorded, "requested": exc.requested}
    return {}


def format_traceback(exc: BaseException, source: bool = False) -> str | None:
    """The exception's traceback as text, its tail bounded to MAX_TRACEBACK characters.
    Without `source` only file, line and function are written: nothing is read."""
    if exc.__traceback__ is None:
        return None
    if source:
        text = "".join(traceback.format_exception(exc)).rstrip("\n")
    else:
        frames = traceback.StackSummary.extract(
            traceback.walk_tb(exc.__traceback__), lookup_lines=False
        )
        lines = ["Traceback (most recent call last):"]
        lines += [f'  File "{f.filename}", line {f.lineno}, in {f.name}' for f in frames]
        lines.append("".join(traceback.format_exception_only(exc)).rstrip("\n"))
        text = "\n".join(lines)
    if len(text) > MAX_TRACEBACK:
        text = "…" + text[-(MAX_TRACEBACK - 1) :]
    return text


def details_of(error: ErrorInfo | None) -> dict[str, Any]:
    """An error's details as a dict ({} when there are none or they are not an object)."""
    if error is None or not error.details:
        return {}
    try:
        value = json.loads(error.details)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def traceback_of(error: ErrorInfo | None) -> str | None:
    """The traceback recorded with an error, if any."""
    value = details_of(error).get("traceback")
    return value if isinstance(value, str) else None


def rebuild(error: ErrorInfo | None) -> ReplayflowError | None:
    """The replayflow exception an error record stands for (None for other errors):
    the kind survives the log, so callers can catch it by class."""
    if error is None:
        return None
    details = details_of(error)
    try:
        if error.type == "EventTimeout":
            return EventTimeout(str(details["event"]))
        if error.type == "StepFailed":
            cause = details.get("cause") or {}
            inner = ErrorInfo(
                type=str(cause.get("type", "")),
                message=str(cause.get("message", "")),
                retryable=False,
                details=json.dumps({"traceback": cause["traceback"]})
                if cause.get("traceback")
                else None,
            )
            return StepFailed(str(details["step"]), inner, int(details["attempts"]))
        if error.type == "Cancelled":
            return Cancelled(str(details.get("reason", error.message)))
        if error.type == "NonDeterminismError":
            return NonDeterminismError(
                int(details["position"]), str(details["recorded"]), str(details["requested"])
            )
    except (KeyError, TypeError, ValueError):
        return None
    plain: dict[str, type[ReplayflowError]] = {
        "PayloadError": PayloadError,
        "LimitExceeded": LimitExceeded,
        "ValidationError": ValidationError,
        "NonRetryableError": NonRetryableError,
    }
    cls = plain.get(error.type)
    return cls(error.message) if cls is not None else None


_ERROR_CLASSES: dict[type[ReplayflowError], type[WorkflowError]] = {}


def _workflow_error_class(kind: type[ReplayflowError]) -> type[WorkflowError]:
    """WorkflowError and `kind` in one class (made once per kind)."""
    cls = _ERROR_CLASSES.get(kind)
    if cls is None:
        name = f"WorkflowError[{kind.__name__}]"
        cls = _ERROR_CLASSES[kind] = type(name, (WorkflowError, kind), {"__module__": __name__})
    return cls


def workflow_error(instance_id: str, status: str, error: ErrorInfo | None) -> WorkflowError:
    """The WorkflowError for an instance that did not complete; also an instance of the
    replayflow exception that ended it (a cancelled instance's is rf.Cancelled)."""
    cause = rebuild(error)
    if cause is None and status == "CANCELLED":
        cause = Cancelled(error.message if error else "")
    if cause is None:
        return WorkflowError(instance_id, status, error)
    cls = _workflow_error_class(type(cause))
    exc = cls.__new__(cls)
    exc.__dict__.update(cause.__dict__)
    # WorkflowError's own attributes win where both have one (`error` is the instance's
    # recorded error; the cause keeps its own, e.g. a failed step's).
    WorkflowError.__init__(exc, instance_id, status, error)
    exc.cause = cause
    return exc
