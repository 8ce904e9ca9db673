"""fast_init's __init__ builds the same objects as the one dataclasses generates."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest

from replayflow.core import messages, replies, state, stream_records
from replayflow.core.decision import Decision
from replayflow.core.fast_init import fast_init
from replayflow.processors.fold_records import Outcome, Record


def _make(name: str, slots: bool = False) -> type[Any]:
    @dataclass(frozen=True, slots=slots)
    class Sample:
        a: int
        b: str = "b"
        c: list[int] = field(default_factory=list)
        d: int = field(default=4, init=False)
        e: tuple[int, ...] = field(default_factory=tuple, init=False)
        f: int = field(default=6, kw_only=True)
        seen: list[str] = field(default_factory=list, compare=False)

        def __post_init__(self) -> None:
            self.seen.append(f"post {self.a}")

    Sample.__qualname__ = name
    return Sample


Plain = _make("Plain")
Fast = fast_init(_make("Fast"))
PlainSlots = _make("PlainSlots", slots=True)
FastSlots = fast_init(_make("FastSlots", slots=True))
PAIRS = [(Plain, Fast), (PlainSlots, FastSlots)]


@pytest.mark.parametrize(("plain_cls", "fast_cls"), PAIRS)
@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((1,), {}),
        ((1, "x", [2]), {}),
        ((), {"a": 1, "c": [3], "f": 9}),
        ((1,), {"b": "y", "seen": ["s"]}),
    ],
)
def test_same_fields_defaults_factories_and_post_init(
    plain_cls: type[Any], fast_cls: type[Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    plain, fast = plain_cls(*args, **kwargs), fast_cls(*args, **kwargs)
    assert dataclasses.asdict(fast) == dataclasses.asdict(plain)
    assert fast.seen == plain.seen  # __post_init__ ran once
    assert fast.c is not fast_cls(1).c  # a fresh default for each instance
    assert fast.__init__.__code__.co_filename.startswith("<fast_init")


@pytest.mark.parametrize(("plain_cls", "fast_cls"), PAIRS)
def test_the_same_signature(plain_cls: type[Any], fast_cls: type[Any]) -> None:
    assert str(inspect.signature(fast_cls)) == str(inspect.signature(plain_cls))
    assert inspect.signature(fast_cls.__init__).parameters.keys() == {
        "self",
        "a",
        "b",
        "c",
        "f",
        "seen",
    }


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, "b", [], [], 5), {}), ((1,), {"d": 4}), ((1,), {"zzz": 1}), ((1,), {"a": 1})],
)
def test_the_same_calls_are_refused(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for cls in (Plain, Fast, PlainSlots, FastSlots):
        with pytest.raises(TypeError):
            cls(*args, **kwargs)


def test_still_frozen_equal_hashable_and_picklable() -> None:
    @fast_init
    @dataclass(frozen=True)
    class Point:
        x: int
        y: int = 0

    p = Point(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 3  # type: ignore[misc]
    assert p == Point(1, 2) != Point(1)
    assert hash(p) == hash(Point(1, 2))
    assert repr(p) == "test_still_frozen_equal_hashable_and_picklable.<locals>.Point(x=1, y=2)"
    assert vars(p) == {"x": 1, "y": 2}


def test_a_slotted_one_too() -> None:
    @fast_init
    @dataclass(frozen=True, slots=True)
    class Point:
        x: int
        y: int = 0
        note: str = field(default="", compare=False, repr=False)

    p = Point(1, 2, "n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 3  # type: ignore[misc]
    assert not hasattr(p, "__dict__")
    assert p == Point(1, 2, "other") != Point(1)
    assert hash(p) == hash(Point(1, 2))
    assert repr(p) == "test_a_slotted_one_too.<locals>.Point(x=1, y=2)"
    record = pickle.loads(pickle.dumps(Record("t", b"k", b"v", 0, "m")))  # (a module's class)
    assert (record, record.message) == (Record("t", b"k", b"v", 0), "m")
    assert dataclasses.replace(p, y=5) == Point(1, 5)


def test_refuses_what_it_cannot_do() -> None:
    @dataclass
    class Mutable:
        x: int

    for cls in (Mutable, int):
        with pytest.raises(TypeError):
            fast_init(cls)


def test_the_fold_types_have_it() -> None:
    modules = (messages, replies, stream_records)
    records = [
        v
        for module in modules
        for v in vars(module).values()
        if isinstance(v, type) and dataclasses.is_dataclass(v) and v.__module__ == module.__name__
    ]
    others = [state.Call, state.Info, state.InstanceState, Decision, Outcome, Record]
    for cls in records + others:
        assert cls.__init__.__code__.co_filename.startswith("<fast_init"), cls


def test_a_message_pickles_and_compares() -> None:
    message = messages.StepScheduled(
        instance_id="w", seq=1, at=2, step="s", function="f", attempt=1, input="null"
    )
    assert pickle.loads(pickle.dumps(message)) == message
    assert message == dataclasses.replace(message)
