"""Deployed documents without Kafka: a DocumentStore over an in-memory document log,
and the built-in emit step sending to the sink it was registered with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from replayflow.core.definitions import Registry
from replayflow.core.errors import ValidationError
from replayflow.dsl import builtins
from replayflow.dsl.documents import DocumentStore, deploy

GREETER = """\
document:
  dsl: '1.0.3'
  namespace: test
  name: greeter
  version: '{version}'
do:
  - greet:
      set:
        greeting: {word}
"""


class MemoryLog:
    """A document log in a list: followers get the records so far, then every append."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None]] = []
        self.followers: list[Callable[[str, bytes | None], None]] = []
        self.closed = False

    def follow(self, apply: Callable[[str, bytes | None], None], timeout: float) -> None:
        for key, value in self.records:
            apply(key, value)
        self.followers.append(apply)

    def append(self, key: str, value: bytes | None) -> None:
        self.records.append((key, value))
        for apply in self.followers:
            apply(key, value)

    def close(self) -> None:
        self.closed = True


def test_deploy_appends_once_and_refuses_other_content_for_a_version() -> None:
    log = MemoryLog()
    with DocumentStore(log) as store:
        first = deploy(store, GREETER.format(version="1.0.0", word="hello"))
        again = deploy(store, GREETER.format(version="1.0.0", word="hello"))
        with pytest.raises(ValidationError, match="immutable"):
            deploy(store, GREETER.format(version="1.0.0", word="howdy"))
    assert first.created and not again.created
    assert [key for key, _ in log.records] == ["greeter:1.0.0"]
    assert log.closed


def test_a_new_store_knows_what_the_log_holds_and_the_newest_version_wins() -> None:
    log = MemoryLog()
    with DocumentStore(log) as deployer:
        deploy(deployer, GREETER.format(version="1.0.0", word="a"))
        deploy(deployer, GREETER.format(version="1.10.0", word="b"))
        deploy(deployer, GREETER.format(version="1.9.0", word="c"))
    store = DocumentStore(MemoryLog()).start()
    assert store.workflow("greeter", None) is None
    store = DocumentStore(log).start()
    newest = store.workflow("greeter", None)
    assert newest is not None and newest.version == "1.10.0"
    assert store.workflow("greeter", "9.9.9") is None


def test_a_tombstone_removes_a_version_and_bad_records_are_skipped() -> None:
    log = MemoryLog()
    store = DocumentStore(log).start()
    deploy(store, GREETER.format(version="1.0.0", word="a"))
    log.append("junk:1", b"not avro")
    log.append("greeter:1.0.0", None)
    assert store.get("greeter", "1.0.0") is None
    assert store.documents() == []


def _emit(registry: Registry) -> Any:
    step = registry.step("rf_emit")
    assert step is not None
    return step.fn


def test_emit_goes_to_the_sink_it_was_registered_with() -> None:
    sent: list[tuple[str, str, dict[str, Any]]] = []
    registry = Registry()
    builtins.register(registry, lambda topic, key, event: sent.append((topic, key, event)))
    _emit(registry)("orders", {"id": "e-1", "type": "t"})
    assert sent == [("orders", "e-1", {"id": "e-1", "type": "t"})]


def test_captured_events_win_over_the_registered_sink() -> None:
    sent: list[Any] = []
    registry = Registry()
    builtins.register(registry, lambda *args: sent.append(args))
    with builtins.capture_events() as events:
        _emit(registry)("orders", {"id": "e-1"})
    assert events == [("orders", {"id": "e-1"})] and sent == []


def test_emit_without_a_sink_says_so() -> None:
    registry = Registry()
    builtins.register(registry)
    with pytest.raises(RuntimeError, match="no event sink"):
        _emit(registry)("orders", {"id": "e-1"})


def test_a_registered_step_of_the_same_name_wins() -> None:
    registry = Registry()
    own = builtins.emit_step(lambda *args: None)
    registry.add([own])
    builtins.register(registry, lambda *args: None)
    assert registry.step("rf_emit") is own
