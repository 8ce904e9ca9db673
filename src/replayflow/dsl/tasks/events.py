"""emit (a CloudEvent, published by a built-in step) and listen (events sent to the
instance, filtered and correlated here)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from replayflow.core import names
from replayflow.dsl import expressions
from replayflow.dsl.errors import fault
from replayflow.dsl.tasks.calls import step_options

if TYPE_CHECKING:
    from replayflow.dsl.interpreter import Run, Scope

DEFAULT_TOPIC = "replayflow.events"


def event_name(event_type: str) -> str:
    """The replayflow event name that carries CloudEvents of `event_type` to an instance:
    the type itself when it is a valid name (reverse-DNS types are), else a digest.
    Send with client.send_event(instance_id, event_name(type), cloud_event)."""
    if names.NAME.fullmatch(event_type):
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
    """Whether `event` passes the filter. Correlation keys without `expect` take the
    value of the first matching event: they are recorded only when the whole filter
    matches."""
    for key, wanted in (spec.get("with") or {}).items():
        actual = event.get(key)
        if expressions.is_expression(wanted):
            if not expressions.truthy(run.eval(wanted, actual, args, f"{where}/with/{key}")):
                return False
        elif actual != wanted:  # literal: a string is not a pattern
            return False
    learned: dict[str, Any] = {}
    for key, rule in (spec.get("correlate") or {}).items():
        value = run.eval(rule["from"], event, args, f"{where}/correlate/{key}/from")
        expect = rule.get("expect")
        if expect is None:
            if key not in correlation:
                learned[key] = value
                continue
            expect = correlation[key]
        elif expressions.is_expression(expect):
            expect = run.eval(expect, None, args, f"{where}/correlate/{key}/expect")
        if value != expect:
            return False
    correlation.update(learned)
    return True


def _event_type(spec: Any, where: str) -> str:
    event_type = (spec.get("with") or {}).get("type") if isinstance(spec, dict) else None
    if not isinstance(event_type, str) or expressions.is_expression(event_type):
        raise fault(
            "configuration",
            "listen filters need a literal event `type`",
            where,
            title="Unsupported listen",
        )
    return event_type


async def _next_event(
    run: Run,
    filters: list[tuple[dict[str, Any], str]],
    pointer: str,
    correlation: dict[str, Any],
    args: dict[str, Any],
) -> tuple[int, dict[str, Any]]:
    """The next event that passes one of `filters` ((filter, where) pairs): (the index
    of the first filter it passes, the event). One wait per distinct event type; with
    several types, ctx.first takes the event recorded first. Events that pass no filter
    are dropped."""
    types: list[str] = []
    for spec, where in filters:
        event_type = _event_type(spec, where)
        if event_type not in types:
            types.append(event_type)
    while True:
        timeout = run.remaining_ms()
        seconds = None if timeout is None else timeout / 1000
        waits = [run.ctx.wait_for_event(event_name(t), timeout=seconds) for t in types]
        if len(waits) == 1:
            index, payload = 0, await run.wait(waits[0], pointer)
        else:
            index, payload = await run.wait(run.ctx.first(waits), pointer)
        event = _envelope(types[index], payload)
        for position, (spec, where) in enumerate(filters):
            if _event_type(spec, where) != types[index]:
                continue
            if _matches(run, spec, event, correlation, args, where):
                return position, event


async def _next_match(
    run: Run,
    spec: dict[str, Any],
    pointer: str,
    correlation: dict[str, Any],
    args: dict[str, Any],
    where: str,
) -> dict[str, Any]:
    _, event = await _next_event(run, [(spec, where)], pointer, correlation, args)
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
        filters = [(f, f"{where}/any/{i}") for i, f in enumerate(to["any"])]
        if not filters:
            raise fault(
                "configuration",
                "listen.to.any: [] (any event of any type) is not supported",
                where,
                title="Unsupported listen",
            )
        until = to.get("until")
        # `until` as an event filter: its events are awaited alongside (and not kept).
        stops: list[tuple[dict[str, Any], str]] = []
        if isinstance(until, dict):
            if "all" in until:
                raise fault(
                    "configuration",
                    "listen.to.until.all is not supported",
                    f"{where}/until",
                    title="Unsupported listen",
                )
            if "one" in until:
                stops = [(until["one"], f"{where}/until/one")]
            else:
                stops = [
                    (f, f"{where}/until/any/{i}") for i, f in enumerate(until.get("any") or [])
                ]
        while True:
            position, event = await _next_event(run, stops + filters, pointer, correlation, args)
            if position < len(stops):
                break
            consumed.append(_read(event, mode))
            if until is None:
                break
            if isinstance(until, dict):
                continue
            if expressions.truthy(
                run.eval(until, consumed, {**args, "events": consumed}, f"{where}/until")
            ):
                break
    return consumed
