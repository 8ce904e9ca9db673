"""call (http, a Python function, a function from `use.functions`) and run workflow."""

from __future__ import annotations

import base64
import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from replayflow.core.context import UNSET, StepRequest
from replayflow.core.names import check_name
from replayflow.core.payloads import DEFAULT_MAX_PAYLOAD, dump
from replayflow.core.policy import NO_RETRY, Retry
from replayflow.dsl import expressions
from replayflow.dsl.durations import duration_ms
from replayflow.dsl.errors import fault

if TYPE_CHECKING:
    from replayflow.dsl.interpreter import Run, Scope

#: Engine-level retries of built-in steps cover only infrastructure trouble (no worker
#: knows the step yet, a worker died): DSL faults are not retryable, and the DSL's own
#: try/catch retry policies decide about those.
INFRA_RETRY = Retry(limit=3, delay="1s", backoff="exponential", max_delay="10s")
UNSUPPORTED = ("openapi", "grpc", "asyncapi", "a2a")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def step_options(run: Run) -> dict[str, Any]:
    left = run.remaining_ms()
    if left is None:
        return {"retry": INFRA_RETRY}
    return {"retry": NO_RETRY, "timeout": max(left, 1) / 1000}


def _auth_header(run: Run, auth: Any, data: Any, args: dict[str, Any], where: str) -> str | None:
    if not isinstance(auth, dict):
        return None
    if "use" in auth:
        auth = (run.use.get("authentications") or {}).get(auth["use"])
        if not isinstance(auth, dict):
            raise fault("configuration", "unknown authentication policy", where)
    auth = run.render(auth, data, args, where)
    for scheme in ("basic", "bearer"):
        if isinstance(auth.get(scheme), dict) and isinstance(auth[scheme].get("use"), str):
            auth = {scheme: _secret_credentials(run, auth[scheme]["use"], f"{where}/{scheme}")}
    if "basic" in auth:
        basic = auth["basic"]
        token = base64.b64encode(
            f"{basic.get('username', '')}:{basic.get('password', '')}".encode()
        ).decode()
        return f"Basic {token}"
    if "bearer" in auth:
        return f"Bearer {auth['bearer'].get('token', '')}"
    raise fault("configuration", "only basic and bearer authentication are supported", where)


def _secret_credentials(run: Run, secret: str, where: str) -> dict[str, Any]:
    """`basic: {use: creds}`: the credentials are secret `creds` (a JSON object, or a
    mapping in a secrets file), declared in `use.secrets`."""
    if secret not in (run.use.get("secrets") or []):
        raise fault("configuration", f"secret {secret!r} is not declared in use.secrets", where)
    value = run.secrets.get(secret, where)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise fault("configuration", f"secret {secret!r} is not a JSON object", where)
    return value


def expand_uri(uri: str, data: Any) -> str:
    """RFC 6570 level-1 templates ({petId}) from the task input's top-level fields."""

    def value(match: re.Match[str]) -> str:
        if isinstance(data, dict) and match.group(1) in data:
            item = data[match.group(1)]
            return quote(str(item).lower() if isinstance(item, bool) else str(item), safe="")
        return match.group(0)

    return _PLACEHOLDER.sub(value, uri)


async def call_http(
    run: Run, name: str, spec: dict[str, Any], pointer: str, data: Any, args: dict[str, Any]
) -> Any:
    from replayflow.dsl.interpreter import await_name

    endpoint = spec.get("endpoint")
    auth = None
    if isinstance(endpoint, dict):
        auth = endpoint.get("authentication")
        uri = endpoint.get("uri")
    else:
        uri = endpoint
    if expressions.is_expression(uri):
        uri = run.eval(uri, data, args, f"{pointer}/with/endpoint")
    if isinstance(uri, dict):
        uri = uri.get("uri") or uri.get("endpoint")
    uri = expand_uri(str(uri), data)
    rest = {k: v for k, v in spec.items() if k not in ("endpoint",)}
    rendered = run.render(rest, data, args, f"{pointer}/with")
    headers = {str(k): str(v) for k, v in (rendered.get("headers") or {}).items()}
    header = _auth_header(run, auth, data, args, f"{pointer}/with/endpoint/authentication")
    if header:
        headers["Authorization"] = header
    request = {
        "method": str(rendered.get("method", "get")).upper(),
        "uri": uri,
        "headers": headers,
        "query": rendered.get("query") or {},
        "body": rendered.get("body"),
        "output": rendered.get("output", "content"),
        "redirect": bool(rendered.get("redirect", False)),
    }
    response = await run.wait(
        run.ctx.step(await_name(pointer), "rf_http_call", request, **step_options(run)), pointer
    )
    if request["output"] == "response":
        return response
    return response.get("content")


async def call_mcp(
    run: Run, spec: dict[str, Any], pointer: str, data: Any, args: dict[str, Any]
) -> Any:
    """One MCP request (`with: method, parameters, transport, timeout`) as the built-in
    step rf_mcp_call: its output is the JSON-RPC result, recorded in history."""
    from replayflow.dsl.interpreter import await_name

    rendered = run.render(spec, data, args, f"{pointer}/with")
    transport = rendered.get("transport") or {}
    if "stdio" in transport:
        stdio = transport["stdio"]
        server: dict[str, Any] = {
            "command": str(stdio["command"]),
            "args": [str(a) for a in stdio.get("arguments") or []],
            "env": {str(k): str(v) for k, v in (stdio.get("environment") or {}).items()} or None,
        }
    else:
        endpoint = transport["http"]["endpoint"]
        uri = endpoint.get("uri") if isinstance(endpoint, dict) else endpoint
        headers = transport["http"].get("headers") or {}
        server = {"url": str(uri), "headers": {str(k): str(v) for k, v in headers.items()}}
    params = rendered.get("parameters") or {}
    if isinstance(params, str):
        raise fault("validation", "MCP parameters must be an object", f"{pointer}/with/parameters")
    timeout = rendered.get("timeout")
    seconds = None if timeout is None else duration_ms(timeout) / 1000
    request = {"server": server, "method": rendered["method"], "params": params, "timeout": seconds}
    step = run.ctx.step(await_name(pointer), "rf_mcp_call", request, **step_options(run))
    return await run.wait(step, pointer)


async def run_call(
    run: Run,
    name: str,
    task: dict[str, Any],
    pointer: str,
    data: Any,
    scope: Scope,
    args: dict[str, Any],
) -> Any:
    from replayflow.dsl.interpreter import await_name

    target = task["call"]
    spec = task.get("with") or {}
    if target == "http":
        return await call_http(run, name, spec, pointer, data, args)
    if target == "mcp":
        return await call_mcp(run, spec, pointer, data, args)
    if target in UNSUPPORTED:
        raise fault(
            "configuration",
            f"call: {target} is not supported by this runtime",
            pointer,
            title="Unsupported call",
        )
    functions = run.use.get("functions") or {}
    if target in functions:
        from replayflow.dsl.interpreter import MAX_FUNCTION_DEPTH

        arguments = run.render(spec, data, args, f"{pointer}/with")
        if run.function_depth >= MAX_FUNCTION_DEPTH:
            raise fault(
                "configuration",
                f"use.functions calls nested more than {MAX_FUNCTION_DEPTH} deep "
                f"(does {target!r} call itself?)",
                pointer,
            )
        run.function_depth += 1
        try:
            output, _ = await run.run_task(
                target, functions[target], f"{pointer}/call", arguments, scope
            )
        finally:
            run.function_depth -= 1
        return output
    # A Python function registered as a step in the workers.
    arguments = run.render(spec, data, args, f"{pointer}/with")
    kwargs = arguments if isinstance(arguments, dict) else {"input": arguments}
    return await run.wait(python_step(run, await_name(pointer), target, kwargs), pointer)


def python_step(run: Run, name: str, function: str, kwargs: dict[str, Any]) -> StepRequest:
    """The request ctx.step(name, function, **kwargs) makes, built directly: `with:` keys
    may be named like ctx.step's own parameters (name, fn, retry, timeout). The step
    keeps the retry policy and timeout it was declared with."""
    check_name(name, "step name")
    check_name(function, "step function")
    limit = getattr(run.ctx, "_max_payload", DEFAULT_MAX_PAYLOAD)
    payload = dump({"args": [], "kwargs": kwargs}, f"the input of step {name!r}", limit)
    return StepRequest(name=name, function=function, input=payload, retry=None, timeout_ms=UNSET)


async def run_run(
    run: Run,
    name: str,
    task: dict[str, Any],
    pointer: str,
    data: Any,
    scope: Scope,
    args: dict[str, Any],
) -> Any:
    spec = task["run"]
    workflow = spec.get("workflow")
    if not isinstance(workflow, dict):
        kind = next((k for k in ("container", "script", "shell") if k in spec), "process")
        raise fault(
            "configuration",
            f"run: {kind} is not supported by this runtime",
            pointer,
            title="Unsupported process",
        )
    child_input = run.render(workflow.get("input", data), data, args, f"{pointer}/run")
    version = workflow.get("version")
    if version == "latest":
        version = None
    request = run.ctx.child(run.child_name(pointer), workflow["name"], child_input, version=version)
    return await run.wait(request, pointer)
