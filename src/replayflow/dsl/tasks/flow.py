"""Tasks that shape the flow and the data: do, for, fork, switch, try, raise, wait, set."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from replayflow.dsl import expressions
from replayflow.dsl.durations import MAX_MS, duration_ms
from replayflow.dsl.errors import WorkflowFault, fault, normalize_type
from replayflow.dsl.model import entries, task_pointer

if TYPE_CHECKING:
    from replayflow.dsl.interpreter import Run, Scope


#: Retries of a policy without any `limit` (no attempt count, no duration).
DEFAULT_RETRY_LIMIT = 100


async def run_do(
    run: Run,
    name: str,
    task: dict[str, Any],
    pointer: str,
    data: Any,
    scope: Scope,
    args: dict[str, Any],
) -> Any:
    return await run.run_list(task["do"], f"{pointer}/do", data, scope)


async def run_set(
    run: Run,
    name: str,
    task: dict[str, Any],
    pointer: str,
    data: Any,
    scope: Scope,
    args: dict[str, Any],
) -> Any:
    return run.render(task["set"], data, args, f"{pointer}/set")


async def run_switch(
    run: Run,
    name: str,
    task: dict[str, Any],
    pointer: str,
    data: Any,
    scope: Scope,
    args: dict[str, Any],
) -> Any:
    default = None
    for index, (case_name, case) in enumerate(entries(task["switch"])):
        if "when" not in case:
            default = case
            continue
        where = f"{pointer}/switch/{index}/{case_name}/when"
        if expressions.truthy(run.eval(case["when"], data, args, where)):
            return ("__switch__", case.get("then"))
    return ("__switch__", default.get("then") if default else None)


async def run_for(
    run: Run,
    name: str,
    task: dict[str, Any],
    pointer: str,
    data: Any,
    scope: Scope,
    args: dict[str, Any],
) -> Any:
    spec = task["for"]
    each, at = spec.get("each", "item"), spec.get("at", "index")
    items = run.eval(spec["in"], data, args, f"{pointer}/for/in")
    if isinstance(items, dict):
        items = list(items.values())
    if items is None:
        items = []
    if not isinstance(items, list):
        raise fault(
            "expression", f"for.in gave {type(items).__name__}, not a list", f"{pointer}/for/in"
        )
    current = data
    for index, item in enumerate(items):
        inner = scope.with_vars(**{each: item, at: index})
        if "while" in task:
            cond = run.eval(
                task["while"], current, run.args(inner, args.get("task")), f"{pointer}/while"
            )
            if not expressions.truthy(cond):
                break
        current = await run.run_list(task["do"], f"{pointer}/do", current, inner)
    return current


async def run_fork(
    run: Run,
    name: str,
    task: dict[str, Any],
    pointer: str,
    data: Any,
    scope: Scope,
    args: dict[str, Any],
) -> Any:
    """Each branch runs as a child instance (Run.branch), so branches make progress
    independently. `compete`: the branch whose outcome is recorded first wins (its
    failure faults the fork); the others run on unawaited and are stopped when this
    instance ends. Otherwise every branch is awaited, and a branch fault (the first in
    document order) faults the fork once all have finished."""
    spec = task["fork"]
    base = f"{pointer}/fork/branches"
    children = [
        run.branch(branch, definition, task_pointer(base, i, branch), data, scope)
        for i, (branch, definition) in enumerate(entries(spec.get("branches")))
    ]
    if not children:
        return [] if not spec.get("compete") else data
    if spec.get("compete", False):
        _, result = await run.wait(run.ctx.first(children), pointer)
        return run.merge_branches([result])[0]
    results = await run.wait(run.ctx.all(children, return_exceptions=True), pointer)
    for result in results:
        if isinstance(result, BaseException):
            raise run.failure(result, pointer)
    return run.merge_branches(results)


def _error_matches(
    run: Run, problem: dict[str, Any], spec: Any, data: Any, args: dict[str, Any], where: str
) -> bool:
    if not isinstance(spec, dict):
        return True
    wanted = spec.get("with") or {}
    for key, value in wanted.items():
        if expressions.is_expression(value):
            value = run.eval(value, data, args, f"{where}/with/{key}")
        actual = problem.get(key)
        if key == "type":
            if actual is None or normalize_type(str(actual)) != normalize_type(str(value)):
                return False
        elif actual != value:
            return False
    return True


def _backoff_ms(run: Run, policy: dict[str, Any], attempt: int, where: str) -> int:
    delay = _duration(policy.get("delay") or {"seconds": 0}, f"{where}/delay")
    backoff = policy.get("backoff") or {}
    if "exponential" in backoff:
        ms = delay * 2 ** min(attempt - 1, 30)
    elif "linear" in backoff:
        ms = delay * attempt
    else:
        ms = delay
    jitter = policy.get("jitter")
    if isinstance(jitter, dict):
        low = _duration(jitter.get("from", 0), f"{where}/jitter/from")
        high = _duration(jitter.get("to", 0), f"{where}/jitter/to")
        ms += low + round(run.ctx.random() * max(high - low, 0))
    return int(ms)


async def run_try(
    run: Run,
    name: str,
    task: dict[str, Any],
    pointer: str,
    data: Any,
    scope: Scope,
    args: dict[str, Any],
) -> Any:
    from replayflow.dsl.interpreter import await_name

    catch = task.get("catch") or {}
    policy = catch.get("retry")
    if isinstance(policy, str):
        policy = (run.use.get("retries") or {}).get(policy)
    variable = catch.get("as", "error")
    started = run.ctx.now_ms()
    attempt = 0
    while True:
        try:
            return await run.run_list(task["try"], f"{pointer}/try", data, scope)
        except WorkflowFault as exc:
            problem = exc.problem
            caught_args = {**args, variable: problem}
            if not _error_matches(
                run, problem, catch.get("errors"), data, caught_args, f"{pointer}/catch/errors"
            ):
                raise
            if "when" in catch and not expressions.truthy(
                run.eval(catch["when"], data, caught_args, f"{pointer}/catch/when")
            ):
                raise
            if "exceptWhen" in catch and expressions.truthy(
                run.eval(catch["exceptWhen"], data, caught_args, f"{pointer}/catch/exceptWhen")
            ):
                raise
            attempt += 1
            if isinstance(policy, dict) and _may_retry(
                run, policy, attempt, started, data, caught_args, pointer
            ):
                delay = min(_backoff_ms(run, policy, attempt, f"{pointer}/catch/retry"), MAX_MS)
                await run.wait(run.ctx.sleep(await_name(pointer, ".retry"), delay / 1000), pointer)
                continue
            if "do" in catch:
                inner = scope.with_vars(**{variable: problem})
                return await run.run_list(catch["do"], f"{pointer}/catch/do", data, inner)
            return data


def _may_retry(
    run: Run,
    policy: dict[str, Any],
    attempt: int,
    started: int,
    data: Any,
    args: dict[str, Any],
    pointer: str,
) -> bool:
    if "when" in policy and not expressions.truthy(
        run.eval(policy["when"], data, args, f"{pointer}/catch/retry/when")
    ):
        return False
    if "exceptWhen" in policy and expressions.truthy(
        run.eval(policy["exceptWhen"], data, args, f"{pointer}/catch/retry/exceptWhen")
    ):
        return False
    limit = policy.get("limit") or {}
    count = (limit.get("attempt") or {}).get("count")
    durations = ((limit.get("attempt") or {}).get("duration"), limit.get("duration"))
    if count is None and all(spec is None for spec in durations):
        count = DEFAULT_RETRY_LIMIT
    if count is not None and attempt > int(count):
        return False
    elapsed = run.ctx.now_ms() - started
    for spec in durations:
        if spec is not None and elapsed >= _duration(spec, f"{pointer}/catch/retry/limit"):
            return False
    return True


def _duration(spec: Any, where: str) -> int:
    try:
        return duration_ms(spec)
    except ValueError as exc:
        raise fault("configuration", str(exc), where) from None


async def run_raise(
    run: Run,
    name: str,
    task: dict[str, Any],
    pointer: str,
    data: Any,
    scope: Scope,
    args: dict[str, Any],
) -> Any:
    error = task["raise"]["error"]
    if isinstance(error, str):
        error = (run.use.get("errors") or {}).get(error)
        if error is None:
            raise fault(
                "configuration", f"no error {task['raise']['error']!r} in use.errors", pointer
            )
    problem = run.render(error, data, args, f"{pointer}/raise/error")
    problem.setdefault("instance", pointer)
    raise WorkflowFault(problem)


async def run_wait(
    run: Run,
    name: str,
    task: dict[str, Any],
    pointer: str,
    data: Any,
    scope: Scope,
    args: dict[str, Any],
) -> Any:
    from replayflow.dsl.interpreter import await_name

    spec = task["wait"]
    if expressions.is_expression(spec):
        spec = run.eval(spec, data, args, f"{pointer}/wait")
    try:
        ms = duration_ms(spec)
    except ValueError as exc:
        raise fault("configuration", str(exc), f"{pointer}/wait") from None
    left = run.remaining_ms()
    if left is not None and left < ms:
        await run.wait(run.ctx.sleep(await_name(pointer), left / 1000), pointer)
        raise run.timeout_fault(pointer)
    await run.wait(run.ctx.sleep(await_name(pointer), ms / 1000), pointer)
    return data
