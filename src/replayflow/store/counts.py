"""How many instances of a partition are running, waiting, queued or suspended.

The counts are state like any other: the fold changes them with the decisions that
move an instance from one status to another and stages them with the batch, so they
reach the changelog in the same transaction and the store in the same write as the
states they count. They are exact after a restore or a crash. A store written before
the counts existed is counted once, when the fold first opens it.
"""

from __future__ import annotations

import msgspec
import orjson

from replayflow.core.callseq import Calls
from replayflow.core.state import CallStatus, InstanceState, Status
from replayflow.store import keys, serde
from replayflow.store.protocol import Store

STATUSES = ("running", "waiting", "queued", "suspended")

Counts = dict[str, int]


def classify(state: InstanceState | None) -> str | None:
    """The gauge status of an instance; None when it is not counted (absent, final)."""
    if state is None:
        return None
    status = state.info.status
    if status is Status.RUNNING:
        waiting = False
        for call in reversed(state.calls):
            s = call.status
            if s is CallStatus.SCHEDULED or s is CallStatus.BACKOFF:
                return "running"
            if s is CallStatus.WAITING:
                waiting = True
        return "waiting" if waiting else "running"
    if status is Status.QUEUED:
        return "queued"
    if status is Status.SUSPENDED:
        return "suspended"
    return None


def zero() -> Counts:
    return dict.fromkeys(STATUSES, 0)


def dump(counts: Counts) -> bytes:
    return orjson.dumps(counts, option=orjson.OPT_SORT_KEYS)


def load(raw: bytes) -> Counts:
    counts = zero()
    counts.update(msgspec.json.decode(raw))
    return counts


def stored(store: Store) -> Counts | None:
    """The counts the store holds; None for a store written before counts existed."""
    raw = store.get(keys.STATUS_COUNTS)
    return None if raw is None else load(raw)


def count(store: Store) -> tuple[Counts, bool]:
    """Count the instances a store holds by reading each one; and whether it holds any."""
    counts = zero()
    found = False
    info: bytes | None = None
    instance = b""
    calls: list[bytes] = []
    for key, value in store.scan(keys.INSTANCES):
        # Keys are i/<id>\0c/<n>, i/<id>\0info and i/<id>\0input: NUL ends the id.
        owner, _, field = key.partition(b"\0")
        if owner != instance:
            _add(counts, info, calls)
            instance, info, calls = owner, None, []
        found = True
        if field == b"info":
            info = value
        elif field.startswith(b"c/"):
            calls.append(value)
    _add(counts, info, calls)
    return counts, found


def _add(counts: Counts, info: bytes | None, calls: list[bytes]) -> None:
    if info is None:
        return
    loaded = serde.load_info(info, "null")
    # Only a running instance's calls tell running from waiting: read them only then.
    steps = tuple(serde.load_call(c) for c in calls) if loaded.status is Status.RUNNING else ()
    status = classify(InstanceState(info=loaded, calls=Calls(steps)))
    if status is not None:
        counts[status] += 1
