"""One root exception, split into what a workflow author meets and what operators meet.

Exceptions that carry meaning across the log (StepFailed, EventTimeout, Cancelled) are
rebuilt from recorded facts on replay, so they hold only data that history records.
"""

from __future__ import annotations

import json

from replayflow.core.messages import ErrorInfo


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
    """A result was asked for an instance that did not complete successfully."""

    def __init__(self, instance_id: str, status: str, error: ErrorInfo | None) -> None:
        detail = f": {error.type}: {error.message}" if error else ""
        super().__init__(f"instance {instance_id!r} ended {status}{detail}")
        self.instance_id = instance_id
        self.status = status
        self.error = error


def error_info(exc: BaseException, retryable: bool | None = None) -> ErrorInfo:
    """The recorded form of an exception raised by user code."""
    if retryable is None:
        retryable = not isinstance(exc, NonRetryableError | PayloadError)
    if isinstance(exc, StepFailed):
        # The step's own error stays readable by machines, not only inside the message.
        cause = json.dumps(
            {
                "step": exc.step,
                "attempts": exc.attempts,
                "cause": {"type": exc.error.type, "message": exc.error.message},
            }
        )
        return ErrorInfo(type="StepFailed", message=str(exc), retryable=False, details=cause)
    # An exception may carry structured details as JSON text (e.g. an RFC 7807 problem).
    details = getattr(exc, "details", None)
    return ErrorInfo(
        type=type(exc).__name__,
        message=str(exc),
        retryable=retryable,
        details=details if isinstance(details, str) else None,
    )
