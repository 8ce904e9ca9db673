"""The interpreter: one code workflow that runs a deployed document on the core.

For a document D, `workflow_def(D)` is `WorkflowDef(name=D.name, version=D.version,
fn=run)`, where `run(ctx, input)` walks D's tasks. Pure tasks (set, switch, for, raise,
the data flow and its jq expressions) are code between awaits and simply run again on
replay; every side effect is a ctx operation recorded in history: call http / call of
a Python function / emit are steps (run by workers), wait is ctx.sleep, listen is
ctx.wait_for_event (ctx.first over several event types), run workflow is ctx.child,
and each fork branch is a child instance of the same document that runs only that
branch (ctx.all over the branches, ctx.first with `compete`). Await names come from the
task's JSON pointer ("/do/0/fetch" -> "do.0.fetch"), so a replay asks for the same
names in the same order.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import jsonschema

from replayflow.core.context import ChildRequest, Context, Request
from replayflow.core.errors import EventTimeout, StepFailed
from replayflow.core.names import MAX_ID_LENGTH
from replayflow.dsl import expressions
from replayflow.dsl.durations import duration_ms
from replayflow.dsl.errors import WorkflowFault, fault, fault_of
from replayflow.dsl.model import FLOW_KEYWORDS, entries, kind_of, task_pointer
from replayflow.dsl.secrets import Secrets

#: Called with (instance id, task pointer, task name) when a task starts: a debugging
#: and testing aid. Code between awaits runs again on replay, so a task may be reported
#: more than once for one instance.
task_observers: list[Callable[[str, str, str], None]] = []

RUNTIME = {"name": "replayflow", "version": metadata.version("replayflow"), "metadata": {}}
UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
#: The input key that makes an instance of a document run one fork branch of it.
BRANCH = "$replayflow.branch"
#: Tasks run one after the other without awaiting anything before the run faults: a
#: loop (`then:`, `for`, `try` with retries) that never awaits would otherwise spin
#: inside one decision for ever. Replays recount from the start, so this is stable.
MAX_TASKS_BETWEEN_AWAITS = 10_000
#: How deeply `use.functions` entries may call each other.
MAX_FUNCTION_DEPTH = 64


def await_name(pointer: str, suffix: str = "") -> str:
    """A deterministic ctx name for the task at `pointer`: '/do/0/fetch' -> 'do.0.fetch'."""
    name = UNSAFE_CHARS.sub("_", pointer.strip("/").replace("/", ".")) + suffix
    if not re.match(r"[A-Za-z_]", name):
        name = "t." + name
    if len(name) > 128:
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        name = f"{name[:100]}.{digest}"
    return name


class _End(Exception):
    """`then: end`: the workflow completes now with this output."""

    def __init__(self, output: Any) -> None:
        super().__init__("end")
        self.output = output


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def date_descriptor(ms: int) -> dict[str, Any]:
    return {"iso8601": _iso(ms), "epoch": {"seconds": ms // 1000, "milliseconds": ms}}


@dataclass
class Scope:
    """Variables visible to expressions at some depth: loop items, caught errors."""

    vars: dict[str, Any] = field(default_factory=dict)

    def with_vars(self, **more: Any) -> Scope:
        return Scope({**self.vars, **more})


#: Runs one task of a kind: (run, kind, name, task, pointer, input, scope, args) ->
#: raw output. The task handlers (dsl/tasks/) are handed in by dsl/workflow.py, so this
#: module and the handlers, which use Run, do not import each other.
Dispatch = Callable[..., Awaitable[Any]]


class Run:
    """One execution of a document inside one workflow coroutine."""

    def __init__(
        self,
        document: dict[str, Any],
        ctx: Context,
        raw_input: Any,
        secrets: Secrets,
        dispatch: Dispatch,
    ) -> None:
        self.document = document
        self.dispatch = dispatch
        self.ctx = ctx
        self.use: dict[str, Any] = document.get("use") or {}
        self.context: Any = {}
        self.secrets = secrets
        self.workflow = {
            "id": ctx.instance_id,
            "definition": document,
            "input": raw_input,
            "startedAt": date_descriptor(ctx.now_ms()),
        }
        self._counts: dict[str, int] = {}
        self.deadline: int | None = None
        self.deadline_where = ""
        self.tasks_since_await = 0
        self.function_depth = 0

    # -- expressions ---------------------------------------------------------------

    def args(
        self, scope: Scope, task: dict[str, Any] | None = None, **extra: Any
    ) -> dict[str, Any]:
        names = self.use.get("secrets") or []
        secrets = expressions.Lazy(lambda where: self.secrets.resolve(names, where))
        args = {
            "context": self.context,
            "workflow": self.workflow,
            "runtime": RUNTIME,
            "secrets": secrets,
            **scope.vars,
            **extra,
        }
        if task is not None:
            args["task"] = task
        return args

    def eval(self, text: Any, data: Any, args: dict[str, Any], where: str) -> Any:
        if not isinstance(text, str):
            return expressions.render(text, data, args, where)
        return expressions.evaluate(text, data, args, where)

    def render(self, value: Any, data: Any, args: dict[str, Any], where: str) -> Any:
        return expressions.render(value, data, args, where)

    def check_schema(self, spec: Any, value: Any, where: str, what: str) -> None:
        if not isinstance(spec, dict):
            return
        document = spec.get("document")
        if document is None:
            raise fault(
                "configuration",
                f"{what} schema: only inline `document` schemas are supported",
                where,
            )
        try:
            jsonschema.validate(value, document)
        except jsonschema.ValidationError as exc:
            raise fault(
                "validation", f"{what} does not match its schema: {exc.message}", where
            ) from None
        except jsonschema.SchemaError as exc:
            raise fault(
                "configuration", f"{what} schema is not a valid JSON Schema: {exc.message}", where
            ) from None

    # -- awaiting ------------------------------------------------------------------

    def child_name(self, pointer: str) -> str:
        """A unique ctx.child name for the task at `pointer`. The driver would number a
        repeated name 'name#2', which is no valid instance id part, so repeats (a
        loop) are numbered here; a name that would make the child id too long is
        shortened to a digest."""
        count = self._counts.get(pointer, 0) + 1
        self._counts[pointer] = count
        name = await_name(pointer, "" if count == 1 else f".n{count}")
        if len(self.ctx.instance_id) + 1 + len(name) + 12 > MAX_ID_LENGTH:
            name = "c." + hashlib.sha256(name.encode()).hexdigest()[:24]
        return name

    def remaining_ms(self) -> int | None:
        if self.deadline is None:
            return None
        return max(self.deadline - self.ctx.now_ms(), 0)

    async def wait(self, request: Request, where: str) -> Any:
        """Await a ctx operation; failures become DSL faults at `where`."""
        self.tasks_since_await = 0
        try:
            value = await request
        except (StepFailed, EventTimeout) as exc:
            raise self.failure(exc, where) from None
        self.check_deadline()
        return value

    def failure(self, exc: BaseException, where: str) -> BaseException:
        """What the DSL raises for a failed await: a fault, or the core's Cancelled."""
        if isinstance(exc, StepFailed):
            return fault_of(exc, where)
        if isinstance(exc, EventTimeout):
            return self.timeout_fault(where)
        return exc

    def timeout_fault(self, where: str) -> WorkflowFault:
        return fault(
            "timeout", "the task ran out of time", self.deadline_where or where, title="Timeout"
        )

    def check_deadline(self) -> None:
        if self.deadline is not None and self.ctx.now_ms() >= self.deadline:
            raise self.timeout_fault(self.deadline_where)

    # -- the workflow --------------------------------------------------------------

    async def execute(self, raw_input: Any) -> Any:
        doc = self.document
        scope = Scope()
        spec = doc.get("input") or {}
        self.check_schema(spec.get("schema"), raw_input, "/input", "the workflow input")
        data = raw_input
        if "from" in spec:
            data = self.eval(spec["from"], raw_input, self.args(scope), "/input/from")
        try:
            data = await self.run_list(doc.get("do"), "/do", data, scope)
        except _End as end:
            data = end.output
        out = doc.get("output") or {}
        if "as" in out:
            data = self.eval(out["as"], data, self.args(scope), "/output/as")
        self.check_schema(out.get("schema"), data, "/output", "the workflow output")
        return data

    async def run_list(self, tasks: Any, pointer: str, data: Any, scope: Scope) -> Any:
        """Run a task list from its first task, following flow directives."""
        items = entries(tasks)
        index = 0
        by_name = {name: i for i, (name, _) in enumerate(items)}
        while 0 <= index < len(items):
            name, task = items[index]
            here = task_pointer(pointer, index, name)
            data, directive = await self.run_task(name, task, here, data, scope)
            if directive in (None, "continue"):
                index += 1
            elif directive == "exit":
                break
            elif directive == "end":
                raise _End(data)
            elif directive in by_name:
                index = by_name[directive]
            else:
                raise fault(
                    "configuration",
                    f"flow directive {directive!r} names no task of this scope",
                    f"{here}/then",
                )
        return data

    async def run_task(
        self, name: str, task: dict[str, Any], pointer: str, data: Any, scope: Scope
    ) -> tuple[Any, str | None]:
        started = self.ctx.now_ms()
        descriptor: dict[str, Any] = {
            "name": name,
            "reference": pointer,
            "definition": task,
            "input": data,
            "startedAt": date_descriptor(started),
        }
        args = self.args(scope, descriptor)
        if "if" in task and not expressions.truthy(
            self.eval(task["if"], data, args, f"{pointer}/if")
        ):
            return data, None
        self.tasks_since_await += 1
        if self.tasks_since_await > MAX_TASKS_BETWEEN_AWAITS:
            raise fault(
                "runtime",
                f"{MAX_TASKS_BETWEEN_AWAITS} tasks ran without awaiting anything (a step, "
                "wait, listen, ...): a loop that never awaits is taken for a runaway",
                pointer,
            )
        for observer in task_observers:
            observer(self.ctx.instance_id, pointer, name)
        inp = task.get("input") or {}
        self.check_schema(inp.get("schema"), data, f"{pointer}/input", "the task input")
        task_input = data
        if "from" in inp:
            task_input = self.eval(inp["from"], data, args, f"{pointer}/input/from")
        args = self.args(scope, descriptor, input=task_input)
        outer = (self.deadline, self.deadline_where)
        timeout = task.get("timeout")
        if isinstance(timeout, str):
            timeout = (self.use.get("timeouts") or {}).get(timeout)
        if isinstance(timeout, dict) and "after" in timeout:
            after = timeout["after"]
            if expressions.is_expression(after):
                after = self.eval(after, task_input, args, f"{pointer}/timeout/after")
            try:
                due = started + duration_ms(after)
            except ValueError as exc:
                raise fault("configuration", str(exc), f"{pointer}/timeout/after") from None
            if self.deadline is None or due < self.deadline:
                self.deadline, self.deadline_where = due, pointer
        try:
            kind = kind_of(task)
            directive = task.get("then")
            raw = await self.dispatch(self, kind, name, task, pointer, task_input, scope, args)
            if isinstance(raw, tuple) and len(raw) == 2 and raw[0] == "__switch__":
                directive = raw[1] or directive
                raw = task_input
            self.check_deadline()
        finally:
            self.deadline, self.deadline_where = outer
        descriptor["output"] = raw
        args = self.args(scope, descriptor, input=task_input)
        out = task.get("output") or {}
        output = raw
        if "as" in out:
            output = self.eval(out["as"], raw, args, f"{pointer}/output/as")
        self.check_schema(out.get("schema"), output, f"{pointer}/output", "the task output")
        export = task.get("export") or {}
        if "as" in export:
            self.context = self.eval(
                export["as"],
                output,
                self.args(scope, descriptor, input=task_input, output=output),
                f"{pointer}/export/as",
            )
            self.check_schema(
                export.get("schema"), self.context, f"{pointer}/export", "the exported context"
            )
        if (
            directive is not None
            and directive not in FLOW_KEYWORDS
            and not isinstance(directive, str)
        ):
            directive = None
        return output, directive

    # -- fork: each branch a child instance -----------------------------------------------

    def branch(
        self, name: str, task: dict[str, Any], pointer: str, data: Any, scope: Scope
    ) -> ChildRequest:
        """A child instance of this document that runs the branch task at `pointer`."""
        spec: dict[str, Any] = {
            "pointer": pointer,
            "name": name,
            "input": data,
            "context": self.context,
            "vars": scope.vars,
            "workflow": {k: v for k, v in self.workflow.items() if k != "definition"},
            "deadline": self.deadline,
            "deadlineWhere": self.deadline_where,
        }
        if resolve(self.document, pointer) is not task:
            spec["task"] = task  # not at its pointer (the body of a use.functions entry)
        return self.ctx.child(
            self.child_name(pointer), self.ctx.workflow, {BRANCH: spec}, version=self.ctx.version
        )

    async def run_branch(self, spec: dict[str, Any]) -> dict[str, Any]:
        """In a branch instance: run the one task, report its output and `$context`."""
        pointer, name = spec["pointer"], spec["name"]
        task = spec.get("task") or resolve(self.document, pointer)
        if not isinstance(task, dict):
            raise fault("runtime", f"no fork branch {name!r} at {pointer}", pointer)
        self.workflow.update(spec.get("workflow") or {})
        self.context = spec.get("context", {})
        self.deadline, self.deadline_where = spec.get("deadline"), spec.get("deadlineWhere", "")
        self.check_deadline()
        scope = Scope(dict(spec.get("vars") or {}))
        try:
            output, _ = await self.run_task(name, task, pointer, spec.get("input"), scope)
        except _End as end:
            return {"output": end.output, "context": self.context, "end": True}
        return {"output": output, "context": self.context, "end": False}

    def merge_branches(self, results: list[dict[str, Any]]) -> list[Any]:
        """Branch outputs; `$context` as the last branch (in document order) that changed
        it left it; a branch that ended the workflow (`then: end`) ends it."""
        before = self.context
        for result in results:
            if result.get("context") != before:
                self.context = result.get("context")
        for result in results:
            if result.get("end"):
                raise _End(result.get("output"))
        return [result.get("output") for result in results]


def resolve(document: Any, pointer: str) -> Any:
    """The value at a JSON pointer of the document, or None."""
    value = document
    for token in pointer.strip("/").split("/") if pointer.strip("/") else []:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict):
            value = value.get(token)
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            return None
    return value
