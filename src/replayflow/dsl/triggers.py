"""Kafka topic triggers declared in DSL documents: `schedule.on` and `listen` whose
CloudEvents come from a Kafka topic (see docs/triggers.md).

The specification leaves the event source to the runtime; a document names its topic
in `metadata` (free-form there, so documents stay valid for any runtime):

    document:
      metadata:
        replayflow: {topic: orders, id: '${ .data.orderId }'}   # for schedule.on
    schedule:
      on: {one: {with: {type: com.example.order.placed}}}
    do:
      - pay:
          metadata:
            replayflow: {topic: payments}                        # for this listen
          listen:
            to:
              one:
                with: {type: com.example.payment.received}
                correlate:
                  order: {from: '${ .data.orderId }', expect: '${ $workflow.id }'}

`schedule.on` (strategies `one` and `any`) starts one instance per event that passes a
filter, with the input `[event]` (the specification's array of triggering events) and
the id given by `metadata.replayflow.id` over the event (default `<name>-<event id>`).
A `listen` with a topic delivers each event of a type it listens for to one instance:
the one named by a correlation rule that expects `$workflow.id` (its `from` over the
event gives the id), else by the task's `metadata.replayflow.id`, else by the record
key (which is what `emit` writes). The instance applies its filters and correlation
rules as for any event.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from replayflow.core.messages import Command, SendEvent, StartWorkflow
from replayflow.core.names import version_key
from replayflow.core.payloads import dump
from replayflow.core.triggers import Source
from replayflow.dsl import expressions
from replayflow.dsl.records import WorkflowDocument
from replayflow.dsl.tasks.events import event_name
from replayflow.processors.trigger_formats import decode_cloudevent
from replayflow.processors.trigger_mapping import instance_id_of
from replayflow.processors.trigger_source import SourceRecord, TriggerSpec, Unmappable

META = "replayflow"
_WORKFLOW_ID = re.compile(r"\$workflow\s*\.\s*id")


def _meta(holder: Any) -> dict[str, Any]:
    """`metadata.replayflow` of a document header or a task ({} when absent)."""
    metadata = holder.get("metadata") if isinstance(holder, dict) else None
    found = metadata.get(META) if isinstance(metadata, dict) else None
    return found if isinstance(found, dict) else {}


def _evaluate(text: Any, data: Any, where: str) -> Any:
    """A runtime expression (`${ ... }` or bare jq) on `data`, as the interpreter
    evaluates `correlate.from`; failures make the record Unmappable."""
    try:
        return expressions.evaluate(str(text), data, {}, where)
    except Exception as exc:  # the DSL's expression fault, or a jq error
        raise Unmappable(f"{where}: {exc}", "ExpressionFailed") from None


def _literal_or_expression(value: Any, data: Any, where: str) -> Any:
    """A `${ ... }` string evaluated on `data`; anything else as it is (a literal)."""
    return _evaluate(value, data, where) if expressions.is_expression(value) else value


def passes(spec: dict[str, Any], event: dict[str, Any], where: str) -> bool:
    """Whether `event` passes an event filter outside any instance: `with` as in a
    listen (a literal equals, an expression is truthy on the attribute), and each
    `correlate` rule that has an `expect` (the others need an instance to learn from)."""
    for key, wanted in (spec.get("with") or {}).items():
        actual = event.get(key)
        if expressions.is_expression(wanted):
            if not expressions.truthy(_evaluate(wanted, actual, f"{where}/with/{key}")):
                return False
        elif actual != wanted:
            return False
    for key, rule in (spec.get("correlate") or {}).items():
        if not isinstance(rule, dict) or rule.get("expect") is None:
            continue
        value = _evaluate(rule.get("from"), event, f"{where}/correlate/{key}/from")
        expect = _literal_or_expression(rule["expect"], None, f"{where}/correlate/{key}/expect")
        if value != expect:
            return False
    return True


def _filters(strategy: Any, where: str) -> Iterator[tuple[dict[str, Any], str]]:
    """The event filters of a consumption strategy (an `until` strategy's too)."""
    if not isinstance(strategy, dict):
        return
    if isinstance(strategy.get("one"), dict):
        yield strategy["one"], f"{where}/one"
    for kind in ("all", "any"):
        for index, spec in enumerate(strategy.get(kind) or []):
            if isinstance(spec, dict):
                yield spec, f"{where}/{kind}/{index}"
    if isinstance(strategy.get("until"), dict):
        yield from _filters(strategy["until"], f"{where}/until")


def _event_type(spec: dict[str, Any]) -> str | None:
    event_type = (spec.get("with") or {}).get("type")
    if isinstance(event_type, str) and not expressions.is_expression(event_type):
        return event_type
    return None


# -- schedule.on ---------------------------------------------------------------------


class StartOnEvent:
    """schedule.on: one instance per CloudEvent that passes one of the filters."""

    def __init__(
        self,
        workflow: str,
        version: str,
        filters: list[tuple[dict[str, Any], str]],
        id_expression: str | None,
    ) -> None:
        self.workflow = workflow
        self.version = version
        self.filters = filters
        self.id_expression = id_expression

    def __call__(self, record: SourceRecord) -> list[Command]:
        event = decode_cloudevent(record)
        if not any(passes(spec, event, where) for spec, where in self.filters):
            return []
        if self.id_expression is not None:
            found = _evaluate(self.id_expression, event, "/document/metadata/replayflow/id")
            instance_id = instance_id_of(found, Source("jq", self.id_expression))
        else:
            instance_id = instance_id_of(
                f"{self.workflow}-{event['id']}", Source("jq", "<name>-<event id>")
            )
        try:
            payload = dump([event], "the workflow input")
        except Exception as exc:
            raise Unmappable(str(exc), "PayloadError") from None
        return [
            StartWorkflow(
                instance_id=instance_id, workflow=self.workflow, input=payload, version=self.version
            )
        ]


# -- listen ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """How an event of one type finds its instance: a jq expression over the event, or
    (None) the record key."""

    expression: str | None
    where: str


class DeliverToListeners:
    """listen with a topic: each event of a listened-for type to the instance(s) its
    routes name; other events are skipped."""

    def __init__(self, routes: dict[str, list[Route]]) -> None:
        self.routes = routes

    def __call__(self, record: SourceRecord) -> list[Command]:
        event = decode_cloudevent(record)
        routes = self.routes.get(event["type"])
        if not routes:
            return []
        try:
            payload = dump(event, "the event payload")
        except Exception as exc:
            raise Unmappable(str(exc), "PayloadError") from None
        ids: list[str] = []
        for route in routes:
            if route.expression is None:
                key = record.key.decode("utf-8", "replace") if record.key is not None else None
                instance_id = instance_id_of(key, Source("key", ""))
            else:
                found = _evaluate(route.expression, event, route.where)
                instance_id = instance_id_of(found, Source("jq", route.expression))
            if instance_id not in ids:
                ids.append(instance_id)
        name = event_name(event["type"])
        return [SendEvent(instance_id=i, name=name, payload=payload) for i in ids]


def _tasks(node: Any, where: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Every task (a dict holding one task kind) below `node`, with its JSON pointer."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _tasks(item, f"{where}/{index}")
    elif isinstance(node, dict):
        if isinstance(node.get("listen"), dict):
            yield node, where
        for key, value in node.items():
            yield from _tasks(value, f"{where}/{key}")


def _listen_routes(document: dict[str, Any]) -> dict[str, dict[str, list[Route]]]:
    """topic -> event type -> routes, for the listens of one document that name a topic."""
    out: dict[str, dict[str, list[Route]]] = {}
    for task, pointer in _tasks(
        [document.get("do"), (document.get("use") or {}).get("functions")], ""
    ):
        meta = _meta(task)
        topic = meta.get("topic")
        if not isinstance(topic, str) or not topic:
            continue
        for spec, where in _filters(task["listen"].get("to"), f"{pointer}/listen/to"):
            event_type = _event_type(spec)
            if event_type is None:
                continue
            route = Route(None, where)
            for key, rule in (spec.get("correlate") or {}).items():
                expect = rule.get("expect") if isinstance(rule, dict) else None
                if isinstance(expect, str) and _WORKFLOW_ID.fullmatch(expressions.strip(expect)):
                    route = Route(str(rule["from"]), f"{where}/correlate/{key}/from")
                    break
            else:
                if isinstance(meta.get("id"), str):
                    route = Route(meta["id"], f"{pointer}/metadata/{META}/id")
            routes = out.setdefault(topic, {}).setdefault(event_type, [])
            if route not in routes:
                routes.append(route)
    return out


# -- from deployed documents -------------------------------------------------------------


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def document_triggers(records: Iterable[WorkflowDocument]) -> list[TriggerSpec]:
    """The triggers of deployed documents: `schedule.on` of each workflow's newest
    version, and the listens of every deployed version (older instances still wait)."""
    by_name: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for record in records:
        by_name.setdefault(record.name, []).append((record.version, json.loads(record.document)))
    specs: list[TriggerSpec] = []
    for name, versions in sorted(by_name.items()):
        versions.sort(key=lambda item: version_key(item[0]))
        newest_version, newest = versions[-1]
        on_spec = _on_trigger(name, newest_version, newest)
        if on_spec is not None:
            specs.append(on_spec)
        merged: dict[str, dict[str, list[Route]]] = {}
        for _, document in versions:
            for topic, by_type in _listen_routes(document).items():
                for event_type, found in by_type.items():
                    known = merged.setdefault(topic, {}).setdefault(event_type, [])
                    known.extend(r for r in found if r not in known)
        for topic, routes in sorted(merged.items()):
            specs.append(
                TriggerSpec(
                    name=f"dsl.{name}.listen.{topic}",
                    topic=topic,
                    mapper=DeliverToListeners(routes),
                    description=f"{topic} (cloudevents) -> listen of {name}: "
                    + ", ".join(sorted(routes)),
                    digest=_digest(topic, {t: [vars(r) for r in rs] for t, rs in routes.items()}),
                )
            )
    return specs


def _on_trigger(name: str, version: str, document: dict[str, Any]) -> TriggerSpec | None:
    meta = _meta(document.get("document"))
    on = (document.get("schedule") or {}).get("on")
    topic = meta.get("topic")
    if not isinstance(on, dict) or not isinstance(topic, str) or not topic:
        return None
    if "all" in on:
        raise ValueError(
            f"{name} {version}: schedule.on.all (one instance from several correlated "
            "events) is not supported from a Kafka topic; use one or any"
        )
    filters = list(_filters({k: v for k, v in on.items() if k != "until"}, "/schedule/on"))
    id_expression = meta.get("id") if isinstance(meta.get("id"), str) else None
    return TriggerSpec(
        name=f"dsl.{name}.on",
        topic=topic,
        mapper=StartOnEvent(name, version, filters, id_expression),
        description=f"{topic} (cloudevents) -> start {name} v{version} (schedule.on)",
        digest=_digest(version, topic, on, id_expression),
    )
