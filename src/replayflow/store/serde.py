"""State records as compact JSON. The store is private to the orchestrator (its wire
contract is the Avro in schemas/); JSON keeps the changelog readable when debugging.

Every decision writes the instance's info record and the calls it changed, and every
cache miss reads them back, so the records are made and read by msgspec (compiled, many
times faster than the standard library's json here). Their values are strings, integers
of at most 64 bits, booleans and null: the text is the same JSON the standard library
wrote (and orjson after it), and old records read as before. orjson wrote the same
bytes, but in the fold, where a batch keeps its records until it commits, it took about
twice as long (1.8 against 0.8 us a record, timed in benchmarks/foldbench.py; freed at
once, both take ~0.3)."""

from __future__ import annotations

from typing import Any

import msgspec

from replayflow.core.limiter import LimiterState
from replayflow.core.messages import ErrorInfo
from replayflow.core.policy import Retry
from replayflow.core.state import Call, CallKind, CallStatus, Info, Status


def _error(data: dict[str, Any] | None) -> ErrorInfo | None:
    return None if data is None else ErrorInfo(**data)


def _error_dict(error: ErrorInfo | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {
        "type": error.type,
        "message": error.message,
        "retryable": error.retryable,
        "details": error.details,
    }


_loads = msgspec.json.Decoder().decode
# Non-ASCII text stays UTF-8 instead of 6-byte \u escapes, so a record is never much
# larger than the payloads the fold accepted. StrEnum values are written as their text.
_dumps = msgspec.json.Encoder().encode

# The short names of the records' fields (the rest keep their own).
_INFO_NAMES = {
    "instance_id": "id",
    "workflow": "wf",
    "version": "v",
    "status": "st",
    "started_at": "t0",
    "output": "out",
    "error": "err",
    "reason": "why",
    "ended_at": "t1",
    "admitted_at": "adm",
    "parent_id": "pid",
    "parent_step": "pstep",
    "schedule_id": "sid",
    "schedule_slot": "slot",
    "limiter": "lim",
    "attempt_base": "abase",
}
_CALL_NAMES = {
    "index": "i",
    "kind": "k",
    "status": "st",
    "function": "fn",
    "input": "in",
    "timeout_ms": "to",
    "attempt": "a",
    "first_attempt": "a1",
    "deadline": "dl",
    "result": "res",
    "error": "err",
    "resolved_seq": "rseq",
    "resolved_at": "rat",
}


class _InfoRecord(msgspec.Struct, rename=_INFO_NAMES, gc=False):
    """The info record as written: its fields in this order, under the short names. A
    struct, not a dict, because msgspec fills and writes it faster (a dict of twenty
    keys is hashed and walked on every decision); the bytes are the same."""

    instance_id: Any
    workflow: Any
    version: Any
    status: Any  # a StrEnum: written as its text
    started_at: Any
    seq: Any
    output: Any
    error: Any
    reason: Any
    ended_at: Any
    admitted_at: Any
    parent_id: Any
    parent_step: Any
    schedule_id: Any
    schedule_slot: Any
    limiter: Any
    run: Any
    attempt_base: Any
    timers: Any  # tuples are written as arrays, as lists are
    inbox: Any


def dump_info(info: Info) -> bytes:
    d = info.__dict__  # (one dict read per field: the fold's records are fast_init ones)
    error = d["error"]
    return _dumps(
        _InfoRecord(
            d["instance_id"],
            d["workflow"],
            d["version"],
            d["status"],
            d["started_at"],
            d["seq"],
            d["output"],
            None if error is None else _error_dict(error),
            d["reason"],
            d["ended_at"],
            d["admitted_at"],
            d["parent_id"],
            d["parent_step"],
            d["schedule_id"],
            d["schedule_slot"],
            d["limiter"],
            d["run"],
            d["attempt_base"],
            d["timers"],
            d["inbox"],
        )
    )


def load_info(raw: bytes, input: str) -> Info:
    """The info record, with the input that is stored apart (written once, at start)."""
    d = _loads(raw)
    return Info(
        instance_id=d["id"],
        workflow=d["wf"],
        version=d["v"],
        status=Status(d["st"]),
        input=input,
        started_at=d["t0"],
        seq=d["seq"],
        output=d["out"],
        error=_error(d["err"]),
        reason=d["why"],
        ended_at=d["t1"],
        admitted_at=d["adm"],
        parent_id=d["pid"],
        parent_step=d["pstep"],
        schedule_id=d.get("sid"),
        schedule_slot=d.get("slot"),
        limiter=d["lim"],
        run=d.get("run", 0),
        attempt_base=d.get("abase", 0),
        timers=tuple((t, due) for t, due in d["timers"]),
        inbox=tuple((e[0], e[1], e[2] if len(e) > 2 else None) for e in d["inbox"]),
    )


class _CallRecord(msgspec.Struct, rename=_CALL_NAMES, gc=False):
    """A call record as written (see _InfoRecord)."""

    index: Any
    kind: Any
    key: Any
    status: Any
    function: Any
    input: Any
    retry: Any
    timeout_ms: Any
    attempt: Any
    first_attempt: Any
    deadline: Any
    result: Any
    error: Any
    resolved_seq: Any
    resolved_at: Any


def dump_call(call: Call) -> bytes:
    d = call.__dict__
    retry, error = d["retry"], d["error"]
    return _dumps(
        _CallRecord(
            d["index"],
            d["kind"],
            d["key"],
            d["status"],
            d["function"],
            d["input"],
            None if retry is None else retry.to_dict(),
            d["timeout_ms"],
            d["attempt"],
            d["first_attempt"],
            d["deadline"],
            d["result"],
            None if error is None else _error_dict(error),
            d["resolved_seq"],
            d["resolved_at"],
        )
    )


def load_call(raw: bytes) -> Call:
    d = _loads(raw)
    return Call(
        index=d["i"],
        kind=CallKind(d["k"]),
        key=d["key"],
        status=CallStatus(d["st"]),
        function=d["fn"],
        input=d["in"],
        retry=None if d["retry"] is None else Retry.from_dict(d["retry"]),
        timeout_ms=d["to"],
        attempt=d["a"],
        first_attempt=d.get("a1", 1),
        deadline=d["dl"],
        result=d["res"],
        error=_error(d["err"]),
        resolved_seq=d["rseq"],
        resolved_at=d["rat"],
    )


def dump_limiter(state: LimiterState) -> bytes:
    return _dumps(
        {
            "key": state.key,
            "limit": state.limit,
            "running": sorted(state.running),
            "next": state.next_ticket,
            "queued": state.queued,
            "head": state.head,
        }
    )


def load_limiter(raw: bytes) -> LimiterState:
    d = _loads(raw)
    return LimiterState(
        key=d["key"],
        limit=d["limit"],
        running=frozenset(d["running"]),
        next_ticket=d["next"],
        queued=d["queued"],
        head=d.get("head", 1),
    )
