"""A deployed document as a WorkflowDef: the interpreter's Run wired to the task
handlers of dsl/tasks/ (kept apart so neither of those imports the other)."""

from __future__ import annotations

from typing import Any

from replayflow.core.context import Context
from replayflow.core.definitions import WorkflowDef
from replayflow.core.names import check_name, check_version
from replayflow.dsl import expressions
from replayflow.dsl.durations import duration_ms
from replayflow.dsl.interpreter import BRANCH, UNSAFE_CHARS, Run
from replayflow.dsl.secrets import Secrets
from replayflow.dsl.tasks import run_kind


def build(document: dict[str, Any], secrets: Secrets | None = None) -> WorkflowDef:
    """The WorkflowDef that runs `document` (a validated, parsed DSL document)."""
    meta = document["document"]
    name = check_name(meta["name"], "workflow name")
    version = check_version(str(meta["version"]))
    resolver = secrets or Secrets()
    timeout = document.get("timeout")
    if isinstance(timeout, str):
        timeout = ((document.get("use") or {}).get("timeouts") or {}).get(timeout)
    timeout_ms = None
    if isinstance(timeout, dict) and not expressions.is_expression(timeout.get("after")):
        timeout_ms = duration_ms(timeout["after"])

    async def run(ctx: Context, input: Any) -> Any:
        if isinstance(input, dict) and isinstance(input.get(BRANCH), dict):
            # A fork branch of an instance of this document (see Run.branch).
            spec = input[BRANCH]
            return await Run(document, ctx, None, resolver, run_kind).run_branch(spec)
        return await Run(document, ctx, input, resolver, run_kind).execute(input)

    run.__name__ = run.__qualname__ = f"dsl_{UNSAFE_CHARS.sub('_', name)}"
    return WorkflowDef(name=name, version=version, fn=run, timeout_ms=timeout_ms)
