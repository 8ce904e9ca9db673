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


def dump_info(info: Info) -> bytes:
    data = {
        "id": info.instance_id,
        "wf": info.workflow,
        "v": info.version,
        "st": info.status,  # a StrEnum: written as its text
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
        "timers": info.timers,  # tuples are written as arrays, as lists are
        "inbox": info.inbox,
    }
    return _dumps(data)


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


def dump_call(call: Call) -> bytes:
    data = {
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
    return _dumps(data)


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
