"""The state records keep their bytes: msgspec writes what orjson (and json before it)
wrote, so a changelog written by an older orchestrator and one written now agree."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from replayflow.core.messages import ErrorInfo
from replayflow.core.policy import Retry
from replayflow.core.state import Call, CallKind, CallStatus, Info, Status
from replayflow.store import serde

TEXT = st.text(max_size=30)  # any code point but lone surrogates: control characters too
LONG = st.integers(min_value=-(2**63), max_value=2**63 - 1)
MAYBE_TEXT = st.none() | TEXT
MAYBE_LONG = st.none() | LONG
ERRORS = st.none() | st.builds(
    ErrorInfo, type=TEXT, message=TEXT, retryable=st.booleans(), details=MAYBE_TEXT
)


def _error_dict(error: ErrorInfo | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {
        "type": error.type,
        "message": error.message,
        "retryable": error.retryable,
        "details": error.details,
    }


def _info_as_orjson_wrote(info: Info) -> bytes:
    """The info record as the writer before msgspec (orjson) made it, from a dict."""
    return orjson.dumps(
        {
            "id": info.instance_id,
            "wf": info.workflow,
            "v": info.version,
            "st": info.status,
            "t0": info.started_at,
            "seq": info.seq,
            "out": info.output,
            "err": _error_dict(info.error),
            "why": info.reason,
            "t1": info.ended_at,
            "adm": info.admitted_at,
            "pid": info.parent_id,
            "pstep": info.parent_step,
            "sid": info.schedule_id,
            "slot": info.schedule_slot,
            "lim": info.limiter,
            "run": info.run,
            "abase": info.attempt_base,
            "timers": info.timers,
            "inbox": info.inbox,
        }
    )


def _call_as_orjson_wrote(call: Call) -> bytes:
    """A call record as the writer before msgspec (orjson) made it, from a dict."""
    return orjson.dumps(
        {
            "i": call.index,
            "k": call.kind,
            "key": call.key,
            "st": call.status,
            "fn": call.function,
            "in": call.input,
            "retry": None if call.retry is None else call.retry.to_dict(),
            "to": call.timeout_ms,
            "a": call.attempt,
            "a1": call.first_attempt,
            "dl": call.deadline,
            "res": call.result,
            "err": _error_dict(call.error),
            "rseq": call.resolved_seq,
            "rat": call.resolved_at,
        }
    )


@settings(max_examples=300, deadline=None)
@given(
    info=st.builds(
        Info,
        instance_id=TEXT,
        workflow=TEXT,
        version=TEXT,
        status=st.sampled_from(list(Status)),
        input=st.just("null"),
        started_at=LONG,
        seq=LONG,
        output=MAYBE_TEXT,
        error=ERRORS,
        reason=MAYBE_TEXT,
        ended_at=MAYBE_LONG,
        admitted_at=MAYBE_LONG,
        parent_id=MAYBE_TEXT,
        parent_step=MAYBE_TEXT,
        schedule_id=MAYBE_TEXT,
        schedule_slot=MAYBE_LONG,
        limiter=MAYBE_TEXT,
        run=LONG,
        attempt_base=LONG,
        timers=st.lists(st.tuples(TEXT, LONG), max_size=3).map(tuple),
        inbox=st.lists(st.tuples(TEXT, TEXT, MAYBE_LONG), max_size=3).map(tuple),
    )
)
def test_info_records_are_the_bytes_orjson_wrote(info: Info) -> None:
    raw = serde.dump_info(info)
    assert raw == _info_as_orjson_wrote(info)
    assert json.loads(raw)["st"] == info.status.value
    assert serde.load_info(raw, "null") == info


@settings(max_examples=300, deadline=None)
@given(
    call=st.builds(
        Call,
        index=st.integers(min_value=0, max_value=10**6),
        kind=st.sampled_from(list(CallKind)),
        key=TEXT,
        status=st.sampled_from(list(CallStatus)),
        function=TEXT,
        input=TEXT,
        retry=st.none() | st.just(Retry()),
        timeout_ms=MAYBE_LONG,
        attempt=LONG,
        first_attempt=LONG,
        deadline=MAYBE_LONG,
        result=MAYBE_TEXT,
        error=ERRORS,
        resolved_seq=MAYBE_LONG,
        resolved_at=MAYBE_LONG,
    )
)
def test_call_records_are_the_bytes_orjson_wrote(call: Call) -> None:
    raw = serde.dump_call(call)
    assert raw == _call_as_orjson_wrote(call)
    assert serde.load_call(raw) == call
