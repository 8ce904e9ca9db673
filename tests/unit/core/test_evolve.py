"""evolve(): dataclasses.replace for the fold's frozen records, same result, faster."""

from __future__ import annotations

from dataclasses import replace

import pytest

from replayflow.core.evolve import evolve, evolve_with
from replayflow.core.state import Call, CallKind, CallStatus


def test_evolve_builds_what_replace_builds() -> None:
    call = Call(index=2, kind=CallKind.STEP, key="a", status=CallStatus.SCHEDULED, attempt=1)
    changed = evolve(call, status=CallStatus.COMPLETED, result="1")
    assert changed == replace(call, status=CallStatus.COMPLETED, result="1")
    assert call.status is CallStatus.SCHEDULED  # the original is untouched
    with pytest.raises(AttributeError):
        changed.status = CallStatus.FAILED  # type: ignore[misc]


def test_an_unknown_field_is_an_error() -> None:
    call = Call(index=0, kind=CallKind.SLEEP, key="s", status=CallStatus.WAITING)
    with pytest.raises(TypeError, match="no field nope"):
        evolve(call, nope=1)


def test_evolve_with_takes_the_changes_as_a_dict() -> None:
    call = Call(index=2, kind=CallKind.STEP, key="a", status=CallStatus.SCHEDULED, attempt=1)
    changes = {"status": CallStatus.COMPLETED, "result": "1"}
    assert evolve_with(call, changes) == evolve(call, **changes)
    assert changes == {"status": CallStatus.COMPLETED, "result": "1"}  # not consumed
    with pytest.raises(TypeError, match="no field nope"):
        evolve_with(call, {"nope": 1})
