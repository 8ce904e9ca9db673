"""Durations, and the formats of names, versions and instance ids, checked where they
enter."""

from __future__ import annotations

from datetime import timedelta

import pytest

import replayflow as rf
from replayflow.core.durations import format_ms, to_ms
from replayflow.core.messages import StartWorkflow
from replayflow.core.names import (
    MAX_ID_LENGTH,
    check_instance_id,
    check_name,
    check_version,
    version_key,
)
from replayflow.testing import Environment

from .helpers import Fold


@rf.step(name="nm_noop")
def noop() -> None:
    return None


@rf.workflow(name="nm_flow")
async def flow(ctx: rf.Context) -> str:
    return "ok"


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("500ms", 500),
        ("10s", 10_000),
        ("1m", 60_000),
        ("1h30m", 5_400_000),
        ("7d", 604_800_000),
        ("2w", 1_209_600_000),
        ("1.5s", 1500),
        (" 1h 2m ", 3_720_000),
        ("10S", 10_000),
        ("0s", 0),
        (2.5, 2500),
        (3, 3000),
        (0, 0),
        (timedelta(minutes=2), 120_000),
        ("PT1M30S", 90_000),
        ("P1DT1H", 90_000_000),
        ("p2w", 1_209_600_000),
        ({"seconds": 3, "milliseconds": 5}, 3005),
        ({"days": 1}, 86_400_000),
    ],
)
def test_durations(value: object, ms: int) -> None:
    assert to_ms(value) == ms  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "10",
        "s",
        "10 parsecs",
        "1h-5m",
        "-1s",
        -1,
        timedelta(seconds=-1),
        True,
        None,
        [1],
        "P",
        "PT",
        float("inf"),
        float("nan"),
        {"fortnights": 1},
        {"seconds": True},
        {"seconds": -1},
    ],
)
def test_invalid_durations(value: object) -> None:
    with pytest.raises(rf.ValidationError):
        to_ms(value)  # type: ignore[arg-type]


def test_a_bound_is_the_callers_choice() -> None:
    assert to_ms("P40000D") == 40_000 * 86_400_000
    assert to_ms("P1D", max_ms=86_400_000) == 86_400_000
    with pytest.raises(rf.ValidationError, match="longer than"):
        to_ms("P1DT1S", max_ms=86_400_000)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0ms"),
        (999, "999ms"),
        (1500, "1.5s"),
        (60_000, "1m"),
        (5_400_000, "1h30m"),
        (90_061_000, "1d1h1m1s"),
    ],
)
def test_format_ms(ms: int, text: str) -> None:
    assert format_ms(ms) == text


@pytest.mark.parametrize("name", ["a", "_private", "step.v2", "with-dash", "A" * 128])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "1starts_with_digit", "has space", "slash/name", "hash#2", "A" * 129, "ünï", None, 5],
)
def test_invalid_names(name: object) -> None:
    with pytest.raises(rf.ValidationError, match="invalid step name"):
        check_name(name, "step name")


@pytest.mark.parametrize(
    "instance_id", ["a", "order-1", "user@example.com", "tenant:42/order=7+x", "9" * MAX_ID_LENGTH]
)
def test_valid_instance_ids(instance_id: str) -> None:
    assert check_instance_id(instance_id) == instance_id


@pytest.mark.parametrize(
    "instance_id",
    ["", "-leading", "~limiter:x", "has space", "9" * (MAX_ID_LENGTH + 1), "tab\t", None],
)
def test_invalid_instance_ids(instance_id: object) -> None:
    with pytest.raises(rf.ValidationError, match="invalid instance id"):
        check_instance_id(instance_id)


def test_a_start_with_a_bad_id_is_rejected_with_a_clear_error() -> None:
    fold = Fold.of(flow)
    decision = fold(StartWorkflow(instance_id="bad id", workflow="nm_flow"))
    assert decision.state is None and decision.rejected is not None
    assert "invalid instance id 'bad id'" in decision.rejected
    env = Environment(flow)
    with pytest.raises(rf.ValidationError, match="invalid instance id"):
        env.start(flow, id="bad id")
    with pytest.raises(rf.ValidationError, match="invalid instance id"):
        env.start(flow, id="x" * (MAX_ID_LENGTH + 1))


def test_a_start_of_an_unknown_workflow_or_version_is_rejected() -> None:
    fold = Fold.of(flow)
    assert fold(StartWorkflow(instance_id="i", workflow="nope")).rejected == (
        "unknown workflow 'nope'"
    )
    rejected = fold(StartWorkflow(instance_id="i", workflow="nm_flow", version="9")).rejected
    assert rejected is not None and "unknown version '9'" in rejected and "1" in rejected
    env = Environment(flow)
    with pytest.raises(rf.ValidationError, match="unknown workflow"):
        env.start("nope")


@pytest.mark.parametrize("version", ["1", "2.0", "1.10-beta", "v3", "2024_01"])
def test_valid_versions(version: str) -> None:
    assert check_version(version) == version


@pytest.mark.parametrize("version", ["", ".1", "1 0", "x" * 65])
def test_invalid_versions(version: str) -> None:
    with pytest.raises(rf.ValidationError):
        check_version(version)


def test_versions_order_naturally_and_the_newest_is_the_default() -> None:
    assert sorted(["10", "2", "1.10", "1.9"], key=version_key) == ["1.9", "1.10", "2", "10"]

    @rf.workflow(name="nm_versioned", version="2")
    async def v2(ctx: rf.Context) -> str:
        return "two"

    @rf.workflow(name="nm_versioned", version="10")
    async def v10(ctx: rf.Context) -> str:
        return "ten"

    env = Environment(v2, v10)
    assert env.start("nm_versioned").result() == "ten"
    assert env.start("nm_versioned", version="2").result() == "two"


def test_declarations_check_their_names_and_shapes() -> None:
    with pytest.raises(rf.ValidationError, match="invalid workflow name"):
        rf.workflow(name="no spaces")(flow.fn)
    with pytest.raises(rf.ValidationError, match="invalid step name"):
        rf.step(name="9lives")(lambda: None)
    with pytest.raises(rf.ValidationError, match="must be an async def"):
        rf.workflow(lambda ctx: None)  # type: ignore[arg-type]
    with pytest.raises(rf.ValidationError, match=r"takes \(ctx\) or \(ctx, input\)"):
        rf.workflow(name="three")(_three_args)
    with pytest.raises(rf.ValidationError, match="concurrency"):
        rf.workflow(name="c", concurrency=0)(flow.fn)
    with pytest.raises(rf.ValidationError, match="invalid version"):
        rf.workflow(name="v", version="no good")(flow.fn)
    with pytest.raises(rf.ValidationError, match="is a step already"):
        rf.step(noop)  # type: ignore[arg-type]


async def _three_args(ctx: rf.Context, a: int, b: int) -> None:
    return None


def test_the_registry_refuses_two_things_under_one_name() -> None:
    @rf.step(name="nm_noop")
    def impostor() -> None:
        return None

    with pytest.raises(rf.ValidationError, match="two steps are named 'nm_noop'"):
        rf.Registry.of(noop, impostor)

    @rf.workflow(name="nm_flow")
    async def other_flow(ctx: rf.Context) -> str:
        return "other"

    with pytest.raises(rf.ValidationError, match="declared twice"):
        rf.Registry.of(flow, other_flow)


def test_ctx_calls_check_their_names() -> None:
    @rf.workflow(name="nm_bad_step")
    async def bad_step(ctx: rf.Context) -> None:
        await ctx.step("bad name", noop)

    @rf.workflow(name="nm_bad_sleep")
    async def bad_sleep(ctx: rf.Context) -> None:
        await ctx.sleep("bad/name", "1s")

    @rf.workflow(name="nm_not_a_step")
    async def not_a_step(ctx: rf.Context) -> None:
        await ctx.step("fine", print)  # type: ignore[arg-type]

    for workflow, message in [
        (bad_step, "invalid step name"),
        (bad_sleep, "invalid sleep name"),
        (not_a_step, "needs a function declared with @rf.step"),
    ]:
        env = Environment(workflow)
        with pytest.raises(rf.WorkflowError) as caught:
            env.start(workflow).result()
        assert caught.value.error is not None and message in caught.value.error.message
