"""emit (a CloudEvent, published by a built-in step) and listen (events sent to the
instance, filtered and correlated here)."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from replayflow.dsl import expressions
from replayflow.dsl.errors import fault
from replayflow.dsl.tasks.calls import step_options

if TYPE_CHECKING:
    from replayflow.dsl.interpreter import Run, Scope

DEFAULT_TOPIC = "replayflow.events"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")


def event_name(event_type: str) -> str:
    """The replayflow event name that carries CloudEvents of `event_type` to an instance:
    the type itself when it is a valid name (reverse-DNS types are), else a digest.
    Send with client.send_event(instance_id, event_name(type), cloud_event)."""
    if _NAME.fullmatch(event_type):
        return event_type
    return "ce." + hashlib.sha256(event_type.encode()).hexdigest()[:32]


async def run_emit(
    run: Run,
    name: str,
    task: dict[str, Any],
    pointer: str,
    data: Any,
    scope: Scope,
    args: dict[str, Any],
) -> Any:
    from replayflow.dsl.interpreter import _iso, await_name

    spec = task["emit"]["event"]
    event = run.render(spec.get("with") or {}, data, args, f"{pointer}/emit/event/with")
    cloud_event = {
        "specversion": "1.0",
        "id": str(event.pop("id", None) or run.ctx.uuid4()),
        "source": event.pop("source", None),
        "type": event.pop("type", None),
        "time": event.pop("time", None) or _iso(run.ctx.now_ms()),
    }
    if "data" in event and "datacontenttype" not in event:
        cloud_event["datacontenttype"] = "application/json"
    cloud_event.update(event)
    topic = spec.get("topic") or DEFAULT_TOPIC
    await run.wait(
        run.ctx.step(await_name(pointer), "rf_emit", topic, cloud_event, **step_options(run)),
        pointer,
    )
    return cloud_event


def _envelope(event_type: str, payload: Any) -> dict[str, Any]:
    if isinstance(payload, dict) and "specversion" in payload and "type" in payload:
        return payload
    return {"specversion": "1.0", "type": event_type, "data": payload}


def _matches(
    run: Run,
    spec: dict[str, Any],
    event: dict[str, Any],
    correlation: dict[str, Any],
    args: dict[str, Any],
    where: str,
) -> bool:
    for key, wanted in (spec.get("with") or {}).items():
        actual = event.get(key)
        if expressions.is_expression(wanted):
            if not expressions.truthy(run.eval(wanted, actual, args, f"{where}/with/{key}")):
                return False
        elif isinstance(wanted, str) and isinstance(actual, str):
            if actual != wanted and not re.fullmatch(wanted, actual):
                return False
        elif actual != wanted:
            return False
    for key, rule in (spec.get("correlate") or {}).items():
        value = run.eval(rule["from"], event, args, f"{where}/correlate/{key}/from")
        expect = rule.get("expect")
        if expect is None:
            expect = correlation.setdefault(key, value)
        elif expressions.is_expression(expect):
            expect = run.eval(expect, None, args, f"{where}/correlate/{key}/expect")
        if value != expect:
            return False
    return True


async def _next_match(
    run: Run,
    spec: dict[str, Any],
    pointer: str,
    correlation: dict[str, Any],
    args: dict[str, Any],
    where: str,
) -> dict[str, Any]:
    event_type = (spec.get("with") or {}).get("type")
    if not isinstance(event_type, str) or expressions.is_expression(event_type):
        raise fault(
            "configuration",
            "listen filters need a literal event `type`",
            where,
            title="Unsupported listen",
        )
    while True:
        timeout = run.remaining_ms()
        request = run.ctx.wait_for_event(
            event_name(event_type), timeout=None if timeout is None else timeout / 1000
        )
        payload = await run.wait(request, pointer)
        event = _envelope(event_type, payload)
        if _matches(run, spec, event, correlation, args, where):
            return event


def _read(event: dict[str, Any], mode: str) -> Any:
    return event if mode == "envelope" else event.get("data")


async def run_listen(
    run: Run,
    name: str,
    task: dict[str, Any],
    pointer: str,
    data: Any,
    scope: Scope,
    args: dict[str, Any],
) -> Any:
    spec = task["listen"]
    to = spec.get("to") or {}
    mode = spec.get("read", "data")
    correlation: dict[str, Any] = {}
    where = f"{pointer}/listen/to"
    if "foreach" in task:
        raise fault(
            "configuration",
            "listen.foreach is not supported yet",
            pointer,
            title="Unsupported listen",
        )
    consumed: list[Any] = []
    if "one" in to:
        consumed.append(
            _read(
                await _next_match(run, to["one"], pointer, correlation, args, f"{where}/one"), mode
            )
        )
    elif "all" in to:
        for index, filter_spec in enumerate(to["all"]):
            consumed.append(
                _read(
                    await _next_match(
                        run, filter_spec, pointer, correlation, args, f"{where}/all/{index}"
                    ),
                    mode,
                )
            )
    elif "any" in to:
        filters = to["any"]
        types = {(f.get("with") or {}).get("type") for f in filters}
        if len(filters) == 0 or len(types) != 1:
            raise fault(
                "configuration",
                "listen.to.any needs one event type for now "
                "(waiting for any of several types needs a core ctx.any)",
                where,
                title="Unsupported listen",
            )
        until = to.get("until")
        while True:
            event = await _next_match(run, filters[0], pointer, correlation, args, f"{where}/any/0")
            if isinstance(until, dict):
                consumed.append(_read(event, mode))
                one = until.get("one") or (until.get("any") or [None])[0]
                if one is not None and _matches(
                    run, one, event, correlation, args, f"{where}/until"
                ):
                    consumed.pop()
                    break
                continue
            consumed.append(_read(event, mode))
            if until is None:
                break
            if expressions.truthy(
                run.eval(until, consumed, {**args, "events": consumed}, f"{where}/until")
            ):
                break
    return consumed
