"""Built-in steps the DSL interpreter schedules. Whoever composes a process that runs
steps registers them (`register(registry, sink)`: the CLI's worker and dev commands,
rf.testing's Environment), unless a step of the same name is registered already.

- `rf_http_call(request)`: one HTTP request with httpx, the Idempotency-Key header set
  to the step's idempotency key (the same for every attempt). Returns the DSL's HTTP
  response object (its `request.headers` without Authorization, Proxy-Authorization
  and Cookie); a status outside 2xx (3xx allowed with `redirect`) or a network
  error raises a communication WorkflowFault.
- `rf_mcp_call(request)`: one MCP request (replayflow.mcp_tools) for a `call: mcp`
  task; its JSON-RPC result is the output. A server that cannot be reached raises a
  communication WorkflowFault, a tool that reports an error a runtime one.
- `rf_emit(topic, event)`: hands a CloudEvent to the event sink given to `register`,
  keyed by the instance id; in a running engine that sink is
  replayflow.processors.emitter.KafkaEmitter (JSON structured mode on the Kafka topic,
  namespace applied). `capture_events()` collects events in memory instead, for
  every registered emit step of the process (tests).
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from replayflow.core.definitions import Registry, StepDef, step
from replayflow.dsl.errors import fault
from replayflow.execution import current_step

Sink = Callable[[str, str, dict[str, Any]], None]  # (topic, key, event)

# Set by capture_events(): wins over the sink each emit step was registered with.
_sink: Sink | None = None
_JSON_TYPES = ("application/json", "+json", "text/json")
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def _content(response: Any, mode: str) -> Any:
    body = response.content
    if mode == "raw":
        return base64.b64encode(body).decode() if body else None
    if not body:
        return None
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if any(kind.endswith(t) or kind == t for t in _JSON_TYPES):
        try:
            return json.loads(body)
        except ValueError:
            pass
    if kind.startswith("text/") or kind in ("application/xml", ""):
        try:
            return body.decode(response.encoding or "utf-8")
        except (UnicodeDecodeError, LookupError):
            pass
    return base64.b64encode(body).decode()


@step(name="rf_http_call")
def http_call(request: dict[str, Any]) -> dict[str, Any]:
    import httpx

    headers = dict(request.get("headers") or {})
    with contextlib.suppress(RuntimeError):
        headers.setdefault("Idempotency-Key", current_step().idempotency_key)
    body = request.get("body")
    kwargs: dict[str, Any] = {}
    if body is not None:
        if isinstance(body, dict | list):
            kwargs["json"] = body
        else:
            kwargs["content"] = str(body).encode()
    method, uri = request["method"], request["uri"]
    try:
        with httpx.Client(timeout=30.0, follow_redirects=False) as client:
            response = client.request(
                method, uri, headers=headers, params=request.get("query") or None, **kwargs
            )
    except httpx.HTTPError as exc:
        raise fault(
            "communication", f"{method} {uri}: {exc}", title="Communication error", status=503
        ) from None
    highest = 399 if request.get("redirect") else 299
    if not 200 <= response.status_code <= highest:
        raise fault(
            "communication",
            f"{method} {uri} answered {response.status_code}: {response.text[:200]}",
            title=response.reason_phrase or "HTTP error",
            status=response.status_code,
        )
    # The result is recorded in history: credentials sent are not echoed back.
    shown = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
    return {
        "request": {"method": method, "uri": uri, "headers": shown},
        "statusCode": response.status_code,
        "headers": dict(response.headers),
        "content": _content(response, request.get("output", "content")),
    }


@step(name="rf_mcp_call")
def mcp_call(request: dict[str, Any]) -> dict[str, Any]:
    from replayflow.mcp_tools import McpServer, send, text_of

    method, params = request["method"], request.get("params") or {}
    try:
        result = send(
            McpServer.from_spec(request["server"]), method, params, request.get("timeout")
        )
    except ImportError as exc:
        raise fault(
            "configuration", f"call: mcp needs `pip install replayflow[ai]` ({exc})"
        ) from None
    except Exception as exc:  # connecting, the protocol, a timeout: the server's trouble
        detail = f"{type(exc).__name__}: {exc}"
        raise fault(
            "communication", f"MCP {method}: {detail}", title="MCP error", status=503
        ) from None
    if method == "tools/call" and result.get("isError"):
        raise fault(
            "runtime", f"MCP tool {params.get('name')!r}: {text_of(result)}", title="MCP tool error"
        )
    return result


def _no_sink(topic: str, key: str, event: dict[str, Any]) -> None:
    raise RuntimeError(
        f"emit to {topic!r}: this process was given no event sink "
        "(register the DSL steps with one, or collect events with dsl.capture_events())"
    )


def emit_step(sink: Sink) -> StepDef:
    """The `rf_emit` step, sending to `sink`."""

    @step(name="rf_emit")
    def emit(topic: str, event: dict[str, Any]) -> None:
        key = event.get("id", "")
        with contextlib.suppress(RuntimeError):
            key = current_step().instance_id
        (_sink or sink)(topic, str(key), event)

    return emit


def set_sink(sink: Sink | None) -> Sink | None:
    """Send every emitted event of this process to `sink` (None: back to the sink each
    emit step was registered with); returns the previous one."""
    global _sink
    previous, _sink = _sink, sink
    return previous


@contextlib.contextmanager
def capture_events() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Collect emitted events as (topic, event) while the block runs."""
    events: list[tuple[str, dict[str, Any]]] = []
    previous = set_sink(lambda topic, key, event: events.append((topic, event)))
    try:
        yield events
    finally:
        set_sink(previous)


def steps(sink: Sink | None = None) -> tuple[StepDef, ...]:
    """The built-in steps, `rf_emit` sending to `sink` (none: emitting fails unless
    capture_events() is active)."""
    return (http_call, mcp_call, emit_step(sink or _no_sink))


def register(registry: Registry, sink: Sink | None = None) -> None:
    """Add the built-in steps that `registry` does not define itself."""
    registry.add([s for s in steps(sink) if s.name not in registry.steps])
