"""Declaring KafkaTriggers and mapping records to commands, on plain objects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import replayflow as rf
from replayflow.core.definitions import Registry
from replayflow.core.messages import SendEvent, StartWorkflow
from replayflow.processors.trigger_file import load_triggers, parse_triggers
from replayflow.processors.trigger_mapping import compile_trigger, registry_triggers
from replayflow.processors.trigger_source import SourceRecord, Unmappable


def record(
    value: object, key: bytes | None = b"order-1", headers: tuple = (), raw: bytes | None = None
) -> SourceRecord:
    body = raw if raw is not None else json.dumps(value).encode()
    return SourceRecord("orders", 2, 41, key, body, headers)


def mapped(trigger: rf.KafkaTrigger, rec: SourceRecord) -> list:  # type: ignore[type-arg]
    return list(compile_trigger(trigger).mapper(rec))


# -- declaring ---------------------------------------------------------------------------


def test_the_workflow_decorator_attaches_triggers() -> None:
    @rf.workflow(name="checkout", trigger=rf.KafkaTrigger(topic="orders", id=".orderId"))
    async def checkout(ctx: rf.Context, order: dict) -> None:  # type: ignore[type-arg]
        return None

    [trigger] = checkout.triggers
    assert trigger.workflow == "checkout"
    assert trigger.trigger_name == "checkout.start.orders"
    assert registry_triggers(Registry.of(checkout)) == [trigger]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"topic": "bad topic"}, "invalid trigger topic"),
        ({"topic": "t", "format": "xml"}, "unknown trigger format"),
        ({"topic": "t", "format": "avro"}, "needs schema="),
        ({"topic": "t", "schema": "x.avsc"}, "schema= is for"),
        ({"topic": "t", "format": "avro", "schema": "x.avsc", "schema_id": 3}, "schema_id="),
        ({"topic": "t", "id": ".a | ("}, "is not a jq expression"),
        ({"topic": "t", "input": ""}, "must be 'key'"),
        ({"topic": "t", "id": "header:"}, "names no header"),
        ({"topic": "t", "event": "not valid!"}, "invalid event name"),
        ({"topic": "t", "version": "no spaces"}, "invalid version"),
    ],
)
def test_bad_declarations_fail_where_they_are_written(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(rf.ValidationError, match=message):
        rf.KafkaTrigger(**kwargs)


def test_a_trigger_needs_a_workflow_or_a_name() -> None:
    with pytest.raises(rf.ValidationError, match="needs name= or workflow="):
        rf.KafkaTrigger(topic="t", event="paid").trigger_name  # noqa: B018
    with pytest.raises(rf.ValidationError, match="starts no workflow"):
        compile_trigger(rf.KafkaTrigger(topic="t", name="lonely"))
    with pytest.raises(rf.ValidationError, match=r"takes rf\.KafkaTrigger"):

        @rf.workflow(trigger=["orders"])  # type: ignore[list-item]
        async def wrong(ctx: rf.Context) -> None:
            return None


def test_two_different_triggers_with_one_name_are_refused() -> None:
    @rf.workflow(name="w", version="1", trigger=rf.KafkaTrigger(topic="t", id=".a"))
    async def one(ctx: rf.Context) -> None:
        return None

    @rf.workflow(name="w", version="2", trigger=rf.KafkaTrigger(topic="t", id=".b"))
    async def two(ctx: rf.Context) -> None:
        return None

    with pytest.raises(rf.ValidationError, match="two different triggers"):
        registry_triggers(Registry.of(one, two))


# -- mapping -----------------------------------------------------------------------------


def test_start_with_id_from_the_key_and_the_whole_value_as_input() -> None:
    trigger = rf.KafkaTrigger(topic="orders", workflow="checkout", version="2")
    [command] = mapped(trigger, record({"total": 3}))
    assert command == StartWorkflow(
        instance_id="order-1", workflow="checkout", input='{"total":3}', version="2"
    )


def test_id_and_input_from_jq_and_field_paths() -> None:
    value = {"order": {"id": "o-9", "lines": [1, 2, 3]}, "customer": "c"}
    trigger = rf.KafkaTrigger(
        topic="orders", workflow="checkout", id=".order.id", input="{n: (.order.lines | length)}"
    )
    [command] = mapped(trigger, record(value))
    assert (command.instance_id, json.loads(command.input)) == ("o-9", {"n": 3})
    jq_id = rf.KafkaTrigger(topic="orders", workflow="checkout", id='"order-" + .customer')
    assert mapped(jq_id, record(value))[0].instance_id == "order-c"


def test_numbers_make_ids_and_headers_give_ids_or_inputs() -> None:
    trigger = rf.KafkaTrigger(
        topic="orders", workflow="w", id=".n", input="header:x-source", name="numbers"
    )
    [command] = mapped(trigger, record({"n": 17}, headers=(("x-source", b"shop"),)))
    assert (command.instance_id, command.input) == ("17", '"shop"')
    by_header = rf.KafkaTrigger(topic="orders", workflow="w", id="header:x-order")
    got = mapped(by_header, record({}, headers=(("x-order", b"a"), ("x-order", b"b"))))
    assert got[0].instance_id == "b"  # the last one of a repeated header


def test_event_delivery_to_the_instance_the_record_names() -> None:
    trigger = rf.KafkaTrigger(
        topic="payments", workflow="checkout", event="paid", id=".orderId", input=".amount"
    )
    assert mapped(trigger, record({"orderId": "o-1", "amount": 5})) == [
        SendEvent(instance_id="o-1", name="paid", payload="5")
    ]


@pytest.mark.parametrize(
    ("trigger", "rec", "error_type", "reason"),
    [
        (rf.KafkaTrigger(topic="t", workflow="w"), record({}, key=None), "NoInstanceId", "key"),
        (
            rf.KafkaTrigger(topic="t", workflow="w"),
            record({}, key=b"\xff\xfe"),
            "Undecodable",
            "not UTF-8",
        ),
        (
            rf.KafkaTrigger(topic="t", workflow="w", id=".id"),
            record({"other": 1}),
            "NoInstanceId",
            "gave nothing",
        ),
        (
            rf.KafkaTrigger(topic="t", workflow="w", id=".id"),
            record({"id": "has space"}),
            "InvalidInstanceId",
            "invalid instance id",
        ),
        (
            rf.KafkaTrigger(topic="t", workflow="w", id=".id"),
            record({"id": {"nested": 1}}),
            "InvalidInstanceId",
            "invalid instance id",
        ),
        (
            rf.KafkaTrigger(topic="t", workflow="w", id=".a.b"),
            record({"a": [1]}),
            "ExpressionFailed",
            "cannot index array",
        ),
        (
            rf.KafkaTrigger(topic="t", workflow="w", id='.a | error("boom")'),
            record({"a": 1}),
            "ExpressionFailed",
            "boom",
        ),
        (
            rf.KafkaTrigger(topic="t", workflow="w", id="header:x-id"),
            record({}),
            "NoInstanceId",
            "header 'x-id'",
        ),
        (rf.KafkaTrigger(topic="t", workflow="w"), record(None, raw=b"{"), "Undecodable", "JSON"),
    ],
)
def test_unmappable_records_say_why(
    trigger: rf.KafkaTrigger, rec: SourceRecord, error_type: str, reason: str
) -> None:
    with pytest.raises(Unmappable, match=reason) as caught:
        mapped(trigger, rec)
    assert caught.value.error_type == error_type


def test_field_paths_read_like_jq() -> None:
    # The fast path for `.a.b` gives what jq gives: null through a missing or null field.
    fast = rf.KafkaTrigger(topic="t", workflow="w", id="key", input=".a.b")
    slow = rf.KafkaTrigger(topic="t", workflow="w", id="key", input="(.a.b)")
    for value in ({"a": {"b": 1}}, {"a": None}, {}, None, {"a": {"b": [1, {"c": 2}]}}):
        assert mapped(fast, record(value)) == mapped(slow, record(value)), value


def test_an_input_over_the_payload_limit_is_unmappable() -> None:
    trigger = rf.KafkaTrigger(topic="t", workflow="w")
    with pytest.raises(Unmappable, match="payload limit") as caught:
        mapped(trigger, record({"big": "x" * (1024 * 1024)}))
    assert caught.value.error_type == "PayloadError"


def test_the_digest_follows_what_the_trigger_does() -> None:
    a = compile_trigger(rf.KafkaTrigger(topic="t", workflow="w"))
    b = compile_trigger(rf.KafkaTrigger(topic="t", workflow="w"))
    c = compile_trigger(rf.KafkaTrigger(topic="t", workflow="w", id=".id"))
    assert a.digest == b.digest != c.digest
    assert a.name == c.name == "w.start.t"


# -- triggers files ------------------------------------------------------------------------


def test_a_triggers_file(tmp_path: Path) -> None:
    (tmp_path / "order.avsc").write_text(
        json.dumps({"type": "record", "name": "O", "fields": [{"name": "id", "type": "string"}]})
    )
    path = tmp_path / "triggers.yaml"
    path.write_text(
        """
triggers:
  - topic: orders
    format: avro
    schema: order.avsc
    workflow: checkout
    version: 2
    id: .id
  - name: payments-in
    topic: payments
    format: cloudevents
    event: paid
    id: .data.orderId
    input: .data
"""
    )
    triggers, base = load_triggers(path)
    assert [t.trigger_name for t in triggers] == ["checkout.start.orders", "payments-in"]
    assert triggers[0].version == "2"
    spec = compile_trigger(triggers[0], base)  # the schema is found beside the file
    assert spec.topic == "orders"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("triggers: {}", "a 'triggers' list"),
        ("triggers: [3]", r"triggers\[0\] is not a mapping"),
        ("triggers: [{topic: t, workflow: w, colour: red}]", "unknown key"),
        ("triggers: [{topic: t, event: e}]", "needs name= or workflow="),
        ("triggers: [{workflow: w}]", "topic"),
        ("triggers: [: :", "not valid YAML"),
    ],
)
def test_bad_triggers_files_name_the_entry(text: str, message: str) -> None:
    with pytest.raises(rf.ValidationError, match=message):
        parse_triggers(text, "t.yaml")
