"""Inputs, step results, event payloads and outputs are JSON values; anything else is a
clear error where it appears."""

from __future__ import annotations

import json
import math

import pytest

import replayflow as rf
from replayflow.core.messages import CompleteStep, StartWorkflow, StepFailed
from replayflow.core.payloads import MAX_DEPTH, check_size, depth, dump, load
from replayflow.testing import Environment

from .helpers import Fold, kinds


@rf.step(name="pl_returns_a_set")
def returns_a_set() -> object:
    return {1, 2}


@rf.step(name="pl_identity")
def identity(value: object) -> object:
    return value


@rf.workflow(name="pl_bad_result")
async def bad_result(ctx: rf.Context) -> object:
    return await ctx.step("bad", returns_a_set)


@rf.workflow(name="pl_bad_argument")
async def bad_argument(ctx: rf.Context) -> object:
    return await ctx.step("id", identity, b"bytes")


@rf.workflow(name="pl_bad_output")
async def bad_output(ctx: rf.Context) -> object:
    return object()


@rf.workflow(name="pl_round_trip")
async def round_trip(ctx: rf.Context, value: object) -> object:
    return await ctx.step("id", identity, value)


@pytest.mark.parametrize(
    "value", [None, True, 0, -1.5, "ünïcode ✓", [1, [2]], {"a": {"b": [None]}}]
)
def test_json_values_round_trip(value: object) -> None:
    assert load(dump(value, "v"), "v") == value
    env = Environment(round_trip)
    assert env.start(round_trip, value).result() == value


@pytest.mark.parametrize("value", [{1, 2}, b"x", object(), math.nan, math.inf, {"k": lambda: 1}])
def test_non_json_values_are_payload_errors(value: object) -> None:
    with pytest.raises(rf.PayloadError, match="the thing is not a JSON value"):
        dump(value, "the thing")


def test_invalid_json_text_is_a_payload_error() -> None:
    with pytest.raises(rf.PayloadError, match="the text is not valid JSON"):
        load("{nope", "the text")
    assert load(None, "nothing") is None


def test_size_is_counted_in_utf8_bytes() -> None:
    check_size("a" * 10, "ascii", 10)
    with pytest.raises(rf.PayloadError, match="is 11 bytes"):
        check_size("a" * 11, "ascii", 10)
    check_size("é" * 5, "two-byte", 10)
    with pytest.raises(rf.PayloadError, match="is 12 bytes"):
        check_size("é" * 6, "two-byte", 10)
    with pytest.raises(rf.PayloadError):
        check_size("✓" * 4, "three-byte", 10)


def test_a_non_json_workflow_input_fails_at_start() -> None:
    env = Environment(round_trip)
    with pytest.raises(rf.PayloadError, match="the workflow input"):
        env.start(round_trip, {1, 2})
    fold = Fold.of(round_trip, identity)
    decision = fold(StartWorkflow(instance_id="i", workflow="pl_round_trip", input="{bad"))
    assert decision.state is None and decision.rejected is not None
    assert "not valid JSON" in decision.rejected


def test_a_non_json_step_argument_fails_at_the_ctx_step_call() -> None:
    env = Environment(bad_argument)
    handle = env.start(bad_argument)
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result()
    error = caught.value.error
    assert error is not None and error.type == "PayloadError"
    assert "the input of step 'id'" in error.message
    assert kinds(env.history(handle.id)) == ["WorkflowStarted", "WorkflowFailed"]


def test_a_non_json_step_result_fails_the_step_without_retry() -> None:
    env = Environment(bad_result)
    handle = env.start(bad_result)
    with pytest.raises(rf.WorkflowError):
        handle.result()
    (failed,) = [e for e in env.history(handle.id) if isinstance(e, StepFailed)]
    assert failed.error.type == "PayloadError" and not failed.error.retryable
    assert "the result of step 'bad' is not a JSON value" in failed.error.message


def test_invalid_json_text_as_a_step_result_fails_the_step() -> None:
    fold = Fold.of(bad_result, returns_a_set)
    fold(StartWorkflow(instance_id="i", workflow="pl_bad_result"))
    decision = fold(CompleteStep(instance_id="i", step="bad", attempt=1, result="{oops"))
    assert kinds(decision.events) == ["StepFailed", "WorkflowFailed"]


def test_a_non_json_output_fails_the_instance() -> None:
    env = Environment(bad_output)
    handle = env.start(bad_output)
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result()
    assert caught.value.error is not None and caught.value.error.type == "PayloadError"
    assert "the workflow output is not a JSON value" in caught.value.error.message


def test_tuples_become_lists_and_keys_become_strings() -> None:
    env = Environment(round_trip)
    assert env.start(round_trip, {"t": (1, 2)}).result() == {"t": [1, 2]}
    assert load(dump({1: "a"}, "v"), "v") == {"1": "a"}


# -- nesting depth ------------------------------------------------------------------------


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_json_nested_up_to_the_limit_loads_and_deeper_is_a_payload_error() -> None:
    assert load(nested(MAX_DEPTH), "x") is not None
    with pytest.raises(rf.PayloadError, match=f"129 levels deep, over the limit of {MAX_DEPTH}"):
        load(nested(MAX_DEPTH + 1), "x")
    # Deep enough for Python's json to raise RecursionError: refused before it parses.
    with pytest.raises(rf.PayloadError, match=f"100000 levels deep, over the limit of {MAX_DEPTH}"):
        load(nested(100_000), "the workflow input")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 0),
        ('"[[["', 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}], "c": "]]]"}', 4),
        ('["\\"[[[", ["\\\\"]]', 2),  # an escaped quote does not end the string
    ],
)
def test_depth_counts_brackets_outside_strings(text: str, expected: int) -> None:
    assert depth(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        '"' + '\\"' * 400_000,  # one string that never ends, full of escaped quotes
        '["' + "x" * 1_000_000,
        "[" + ",".join(["[]"] * 300_000) + "]",
        '"a"' * 300_000,
    ],
)
def test_depth_is_linear_on_hostile_text(text: str) -> None:
    # Quadratic matching would take minutes here (the suite's timeout fails it).
    assert depth(text) <= 2


def test_a_too_deep_python_value_is_a_payload_error_not_a_recursion_error() -> None:
    value: list[object] = []
    for _ in range(5000):
        value = [value]
    with pytest.raises(rf.PayloadError, match="nested deeper than"):
        dump(value, "the output")
    with pytest.raises(rf.PayloadError, match="over the limit"):
        dump(json.loads(nested(MAX_DEPTH + 1)), "the output")


def test_a_deeply_nested_input_is_rejected_at_start_naming_the_limit() -> None:
    fold = Fold.of(round_trip, identity)
    start = StartWorkflow(instance_id="deep", workflow="pl_round_trip", input=nested(1000))
    decision = fold(start)
    assert decision.state is None
    assert decision.rejected is not None
    assert f"over the limit of {MAX_DEPTH}" in decision.rejected
    assert len(decision.rejected) < 200


def test_fast_and_reference_encoders_agree() -> None:
    """orjson makes the text unless it must not: the result reads back the same either
    way, and what the standard library refused is still refused."""
    big = 2**70
    for value in [{"k": None}, [1.5, "é", None], big, {"n": -(2**63)}, "x" * 100]:
        assert load(dump(value, "v"), "v") == value
    assert load(str(big), "big") == big  # integers past 64 bits stay exact
    assert load("NaN", "nan") != load("NaN", "nan")  # read as before (json.loads)
    with pytest.raises(rf.PayloadError):
        dump({"a": math.nan}, "nested nan")
