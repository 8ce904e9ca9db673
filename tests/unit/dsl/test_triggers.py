"""DSL documents as Kafka topic triggers: `schedule.on` and `listen` with a topic, mapped
on plain records and folded by the in-memory engine (rf.testing.Environment)."""

from __future__ import annotations

import json

import pytest

from replayflow import dsl
from replayflow.core.messages import SendEvent, StartWorkflow
from replayflow.dsl.documents import record_of
from replayflow.dsl.triggers import document_triggers
from replayflow.processors.trigger_source import SourceRecord, TriggerSpec, Unmappable
from replayflow.testing import Environment

ORDER_FLOW = """\
document:
  dsl: '1.0.3'
  namespace: shop
  name: order-flow
  version: '{version}'
  metadata:
    replayflow:
      topic: orders
      id: '${{ "order-" + .data.orderId }}'
schedule:
  on:
    any:
      - with:
          type: com.example.order.placed
          source: https://shop.example.com
      - with:
          type: com.example.order.imported
do:
  - pay:
      metadata:
        replayflow:
          topic: payments
      listen:
        to:
          one:
            with:
              type: com.example.payment.received
            correlate:
              order:
                from: '${{ "order-" + .data.orderId }}'
                expect: '${{ $workflow.id }}'
  - done:
      set:
        order: '${{ $workflow.input[0].data.orderId }}'
        paid: '${{ .[0].amount }}'
"""


def cloud_event(
    event_type: str, data: object, source: str = "https://shop.example.com", id: str = "e-1"
) -> bytes:
    return json.dumps(
        {"specversion": "1.0", "id": id, "source": source, "type": event_type, "data": data}
    ).encode()


def rec(value: bytes, topic: str = "orders", key: bytes | None = None) -> SourceRecord:
    return SourceRecord(topic, 0, 1, key, value)


def specs(*texts: str) -> dict[str, TriggerSpec]:
    return {s.name: s for s in document_triggers([record_of(t) for t in texts])}


def test_a_document_gives_a_start_trigger_and_a_listen_trigger() -> None:
    found = specs(ORDER_FLOW.format(version="1.0.0"))
    assert sorted(found) == ["dsl.order-flow.listen.payments", "dsl.order-flow.on"]
    assert found["dsl.order-flow.on"].topic == "orders"
    assert found["dsl.order-flow.listen.payments"].topic == "payments"


def test_schedule_on_starts_one_instance_per_matching_event() -> None:
    start = specs(ORDER_FLOW.format(version="1.0.0"))["dsl.order-flow.on"].mapper
    placed = cloud_event("com.example.order.placed", {"orderId": "7"})
    [command] = start(rec(placed))
    assert isinstance(command, StartWorkflow)
    assert (command.instance_id, command.workflow, command.version) == (
        "order-7",
        "order-flow",
        "1.0.0",
    )
    assert json.loads(command.input)[0]["data"] == {"orderId": "7"}  # input: [event]
    # A literal in `with` is compared for equality: another source does not match.
    assert (
        start(
            rec(cloud_event("com.example.order.placed", {}, source="https://elsewhere.example.com"))
        )
        == []
    )
    assert start(rec(cloud_event("com.example.other", {"orderId": "7"}))) == []
    assert start(rec(cloud_event("com.example.order.imported", {"orderId": "8"})))


def test_schedule_on_without_an_id_expression_uses_name_and_event_id() -> None:
    text = ORDER_FLOW.format(version="1.0.0").replace(
        """      id: '${ "order-" + .data.orderId }'\n""", ""
    )
    start = specs(text)["dsl.order-flow.on"].mapper
    [command] = start(rec(cloud_event("com.example.order.placed", {}, id="abc")))
    assert command.instance_id == "order-flow-abc"


def test_the_newest_version_starts_and_every_version_listens() -> None:
    old = ORDER_FLOW.format(version="1.0.0")
    new = ORDER_FLOW.format(version="1.1.0").replace(
        "com.example.payment.received", "com.example.payment.settled"
    )
    found = specs(old, new)
    [command] = found["dsl.order-flow.on"].mapper(
        rec(cloud_event("com.example.order.placed", {"orderId": "1"}))
    )
    assert command.version == "1.1.0"
    listen = found["dsl.order-flow.listen.payments"].mapper
    for event_type in ("com.example.payment.received", "com.example.payment.settled"):
        assert listen(rec(cloud_event(event_type, {"orderId": "1"}), "payments"))


def test_listen_routes_by_the_correlation_rule_that_expects_the_instance_id() -> None:
    listen = specs(ORDER_FLOW.format(version="1.0.0"))["dsl.order-flow.listen.payments"].mapper
    value = cloud_event("com.example.payment.received", {"orderId": "7", "amount": 3})
    [command] = listen(rec(value, "payments"))
    assert isinstance(command, SendEvent)
    assert (command.instance_id, command.name) == ("order-7", "com.example.payment.received")
    assert json.loads(command.payload)["type"] == "com.example.payment.received"
    # Event types no listen waits for are skipped, not dead-lettered.
    assert listen(rec(cloud_event("com.example.unrelated", {}), "payments")) == []


def test_listen_without_such_a_rule_routes_by_the_record_key() -> None:
    text = ORDER_FLOW.format(version="1.0.0").replace("expect: '${ $workflow.id }'", "")
    listen = specs(text)["dsl.order-flow.listen.payments"].mapper
    value = cloud_event("com.example.payment.received", {"orderId": "7"})
    assert listen(rec(value, "payments", key=b"order-7"))[0].instance_id == "order-7"
    with pytest.raises(Unmappable, match="no instance id") as caught:
        listen(rec(value, "payments", key=None))
    assert caught.value.error_type == "NoInstanceId"


def test_records_that_are_not_cloudevents_are_unmappable() -> None:
    found = specs(ORDER_FLOW.format(version="1.0.0"))
    for spec in found.values():
        with pytest.raises(Unmappable, match="CloudEvent"):
            spec.mapper(rec(b"plain text"))


def test_schedule_on_all_is_refused_with_a_reason() -> None:
    text = ORDER_FLOW.format(version="1.0.0").replace("    any:", "    all:")
    with pytest.raises(ValueError, match=r"schedule.on.all .* is not supported"):
        specs(text)


def test_documents_without_topics_give_no_triggers() -> None:
    text = ORDER_FLOW.format(version="1.0.0").replace("topic: ", "elsewhere: ")
    assert specs(text) == {}


def test_the_mapped_commands_drive_a_document_through_start_and_listen() -> None:
    """The commands the two triggers make, folded by the in-memory engine: the order
    event starts the instance, the payment event wakes its listen."""
    text = ORDER_FLOW.format(version="1.0.0")
    found = specs(text)
    env = Environment(dsl.workflow_from_text(text))
    [start] = found["dsl.order-flow.on"].mapper(
        rec(cloud_event("com.example.order.placed", {"orderId": "7"}))
    )
    env.deliver(start)
    assert env.status("order-7").name == "RUNNING"
    payment = cloud_event("com.example.payment.received", {"orderId": "7", "amount": 12})
    for command in found["dsl.order-flow.listen.payments"].mapper(rec(payment, "payments")):
        env.deliver(command)
    assert env.result("order-7") == {"order": "7", "paid": 12}


FILTERED = """\
document:
  dsl: '1.0.3'
  namespace: shop
  name: vip-flow
  version: '1.0.0'
  metadata:
    replayflow: {topic: orders}
schedule:
  on:
    one:
      with:
        type: com.example.order.placed
        subject: '${ startswith("vip-") }'
      correlate:
        region: {from: '${ .data.region }', expect: eu}
do:
  - wait:
      metadata:
        replayflow: {topic: notes, id: '${ .subject }'}
      listen:
        to:
          one:
            with: {type: com.example.note}
"""


def event_with(subject: str, region: str, event_type: str = "com.example.order.placed") -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"{subject}-{region}",
            "source": "https://shop.example.com",
            "type": event_type,
            "subject": subject,
            "data": {"region": region},
        }
    ).encode()


def test_schedule_on_filters_by_expressions_and_correlation_expectations() -> None:
    start = specs(FILTERED)["dsl.vip-flow.on"].mapper
    assert start(rec(event_with("vip-1", "eu")))[0].instance_id == "vip-flow-vip-1-eu"
    assert start(rec(event_with("std-1", "eu"))) == []  # the `with` expression is false
    assert start(rec(event_with("vip-2", "us"))) == []  # the correlation expects eu


def test_listen_routed_by_the_task_metadata_id() -> None:
    listen = specs(FILTERED)["dsl.vip-flow.listen.notes"].mapper
    [command] = listen(rec(event_with("vip-1", "eu", "com.example.note"), "notes"))
    assert command.instance_id == "vip-1"
