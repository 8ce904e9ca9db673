"""DSL errors: RFC 7807 problem details with `instance` as a JSON pointer.

A fault travels through the engine as an exception. Raised in the workflow code it
ends the instance FAILED with ErrorInfo(type="WorkflowFault"); raised in a built-in
step it fails the step for good (it is a NonRetryableError: the DSL's own retry
policies decide what happens next). The problem itself rides in ErrorInfo.details as
JSON (the core keeps an exception's `details` when it is JSON text), and from there in
a failed step's or child's error to the awaiting instance.
"""

from __future__ import annotations

import json
from typing import Any

from replayflow.core.errors import NonRetryableError, StepFailed
from replayflow.core.messages import ErrorInfo

SPEC_PREFIX = "https://serverlessworkflow.io/spec/1.0.0/errors/"
#: Other spellings of the standard types: the CTK's, and later releases'.
ALIAS_PREFIXES = (
    "https://serverlessworkflow.io/spec/1.0.0/errors/",
    "https://serverlessworkflow.io/dsl/errors/types/",
    "https://serverlessworkflow.io/spec/errors/",
    "https://open-workflow-specification.org/spec/1.0.0/errors/",
    "https://open-workflow-specification.org/dsl/errors/types/",
    "https://open-workflow-specification.org/errors/",
)
STANDARD = {
    "configuration": 400,
    "validation": 400,
    "expression": 400,
    "authentication": 401,
    "authorization": 403,
    "timeout": 408,
    "communication": 500,
    "runtime": 500,
}


def standard_type(kind: str) -> str:
    return SPEC_PREFIX + kind


def normalize_type(uri: str) -> str:
    """A comparable form of an error type: 'std:communication' for every spelling of a
    standard type, the URI itself otherwise."""
    for prefix in ALIAS_PREFIXES:
        if uri.startswith(prefix) and uri[len(prefix) :] in STANDARD:
            return "std:" + uri[len(prefix) :]
    return uri


class WorkflowFault(NonRetryableError):
    """An error as the DSL defines it."""

    def __init__(self, problem: dict[str, Any]) -> None:
        self.problem = {k: v for k, v in problem.items() if v is not None}
        self.details = json.dumps(self.problem, separators=(",", ":"), ensure_ascii=False)
        title = self.problem.get("title") or self.problem.get("type", "error")
        text = f"{title} ({self.problem.get('status')})"
        if self.problem.get("detail"):
            text += f": {self.problem['detail']}"
        if self.problem.get("instance"):
            text += f" at {self.problem['instance']}"
        super().__init__(text)

    def at(self, instance: str) -> WorkflowFault:
        """This fault with `instance` set, unless it has one already."""
        if self.problem.get("instance"):
            return self
        return WorkflowFault({**self.problem, "instance": instance})


def fault(
    kind: str,
    detail: str | None,
    where: str = "",
    title: str | None = None,
    status: int | None = None,
) -> WorkflowFault:
    return WorkflowFault(
        {
            "type": standard_type(kind),
            "status": status or STANDARD[kind],
            "title": title or kind.capitalize() + " error",
            "detail": detail,
            "instance": where or None,
        }
    )


def expression_error(detail: str, where: str = "") -> WorkflowFault:
    return fault("expression", detail, where, title="Expression error")


def problem_of(error: ErrorInfo) -> dict[str, Any]:
    """The problem details recorded for a failure, whatever raised it."""
    data: Any = None
    if error.details:
        try:
            data = json.loads(error.details)
        except ValueError:
            data = None
    if isinstance(data, dict) and "type" in data and "status" in data:
        return data
    if isinstance(data, dict) and isinstance(data.get("cause"), dict):
        # rf.StepFailed's recorded form: {"step", "attempts", "cause": {type, message}}
        cause = data["cause"]
        details = cause.get("details")
        return problem_of(
            ErrorInfo(
                type=str(cause.get("type")),
                message=str(cause.get("message", "")),
                details=details if isinstance(details, str) else None,
            )
        )
    if error.type == "StepTimeout":
        return {
            "type": standard_type("timeout"),
            "status": 408,
            "title": "Timeout",
            "detail": error.message,
        }
    return {
        "type": standard_type("runtime"),
        "status": 500,
        "title": error.type,
        "detail": error.message,
    }


def fault_of(exc: StepFailed, where: str) -> WorkflowFault:
    return WorkflowFault(problem_of(exc.error)).at(where)
