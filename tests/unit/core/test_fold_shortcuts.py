"""The fold's shortcuts build what the general paths build: a state made without
__post_init__, a result read without describing its call first."""

from __future__ import annotations

import pytest

from replayflow.core.callseq import Calls
from replayflow.core.driver import _value
from replayflow.core.errors import PayloadError
from replayflow.core.payloads import load
from replayflow.core.state import (
    Call,
    CallKind,
    CallStatus,
    Info,
    InstanceState,
    Status,
    built_state,
)

INFO = Info(
    instance_id="i-1", workflow="w", version="1", status=Status.RUNNING, input="1", started_at=5
)


def _call(result: str | None) -> Call:
    return Call(index=0, kind=CallKind.STEP, key="a", status=CallStatus.COMPLETED, result=result)


def test_built_state_is_the_state_the_constructor_makes() -> None:
    calls = Calls([_call("1")])
    made = built_state(INFO, calls)
    assert made == InstanceState(info=INFO, calls=calls)
    assert hash(made) == hash(InstanceState(info=INFO, calls=calls))
    assert made.calls is calls and made.info is INFO
    with pytest.raises(AttributeError):
        made.info = INFO  # type: ignore[misc]  # frozen, as the constructor's


@pytest.mark.parametrize("result", ["1", '{"a":[1,2]}', "null", None, "NaN"])
def test_a_result_reads_as_load_reads_it(result: str | None) -> None:
    call = _call(result)
    assert repr(_value(call)) == repr(load(result, call.describe()))  # (NaN is not NaN)


@pytest.mark.parametrize("result", ["{", "[" * 200 + "]" * 200])
def test_a_bad_result_fails_naming_its_call(result: str) -> None:
    call = _call(result)
    with pytest.raises(PayloadError) as expected:
        load(result, call.describe())
    with pytest.raises(PayloadError) as got:
        _value(call)
    assert str(got.value) == str(expected.value)
    assert "step 'a'" in str(got.value)
