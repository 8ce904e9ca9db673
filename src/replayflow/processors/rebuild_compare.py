"""Comparing a rebuilt partition store with the live one, entity by entity.

Instances are compared record by record, decoded: the info (field by field), the
input, each call, and the timers the index holds for them. A limiter is compared by
what admission means: its limit, who holds a slot, and who waits in which order. The
tickets that number its queue are positions, not facts (see rebuild_limiters.py), so
two queues in the same order are the same queue. The status counts are compared as
they are. The store's own bookkeeping (changelog offset, time of the last write) is
not state and is left out.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from replayflow.store import counts, keys, serde
from replayflow.store.protocol import Store

LIMITERS = b"l/"
QUEUES = b"q/"


@dataclass(frozen=True)
class Difference:
    entity: str  # an instance id, "limiter <key>", or "status counts"
    details: tuple[str, ...]  # each: what differs, live side and rebuilt side

    def describe(self) -> str:
        return f"{self.entity}: " + "; ".join(self.details)


def compare(live: Store, rebuilt: Store, limit: int = 5) -> list[Difference]:
    """Every entity whose state differs, with up to `limit` details each."""
    found: list[Difference] = []
    live_instances, rebuilt_instances = _instances(live), _instances(rebuilt)
    live_timers, rebuilt_timers = _timers(live), _timers(rebuilt)
    for instance_id, ours, theirs in _merge(live_instances, rebuilt_instances):
        details = _instance_details(ours, theirs)
        timers = (live_timers.pop(instance_id, set()), rebuilt_timers.pop(instance_id, set()))
        if timers[0] != timers[1] and ours is not None and theirs is not None:
            details.append(_side("timers", sorted(timers[0]), sorted(timers[1])))
        if details:
            found.append(Difference(instance_id, tuple(details[:limit])))
    for instance_id in sorted(set(live_timers) | set(rebuilt_timers)):
        ours_t, theirs_t = (
            live_timers.get(instance_id, set()),
            rebuilt_timers.get(instance_id, set()),
        )
        if ours_t != theirs_t:
            found.append(
                Difference(instance_id, (_side("timers", sorted(ours_t), sorted(theirs_t)),))
            )
    live_limiters, rebuilt_limiters = _limiters(live), _limiters(rebuilt)
    for key in sorted(set(live_limiters) | set(rebuilt_limiters)):
        ours_l, theirs_l = live_limiters.get(key), rebuilt_limiters.get(key)
        if ours_l != theirs_l:
            found.append(Difference(f"limiter {key}", (_side("admission", ours_l, theirs_l),)))
    ours_c, theirs_c = live.get(keys.STATUS_COUNTS), rebuilt.get(keys.STATUS_COUNTS)
    if _counts(ours_c) != _counts(theirs_c):
        found.append(
            Difference("status counts", (_side("counts", _counts(ours_c), _counts(theirs_c)),))
        )
    return found


# -- instances ---------------------------------------------------------------------------

Records = dict[bytes, bytes]  # an instance's keys after its id: b"info", b"input", b"c/..."


def _instances(store: Store) -> Iterator[tuple[str, Records]]:
    """(instance id, its records), in id order."""
    rows = store.scan(keys.INSTANCES)
    for owner, group in groupby(rows, key=lambda kv: kv[0].partition(b"\0")[0]):
        yield owner[2:].decode(), {k.partition(b"\0")[2]: v for k, v in group}


def _merge(
    a: Iterator[tuple[str, Records]], b: Iterator[tuple[str, Records]]
) -> Iterator[tuple[str, Records | None, Records | None]]:
    """Two id-ordered streams side by side."""
    left, right = next(a, None), next(b, None)
    while left is not None or right is not None:
        if right is None or (left is not None and left[0] < right[0]):
            assert left is not None
            yield left[0], left[1], None
            left = next(a, None)
        elif left is None or right[0] < left[0]:
            yield right[0], None, right[1]
            right = next(b, None)
        else:
            yield left[0], left[1], right[1]
            left, right = next(a, None), next(b, None)


def _instance_details(live: Records | None, rebuilt: Records | None) -> list[str]:
    if live is None:
        return ["only in the rebuilt state"]
    if rebuilt is None:
        return ["only in the live state (its history was not rebuilt)"]
    details: list[str] = []
    if live.get(b"input") != rebuilt.get(b"input"):
        details.append(_side("input", live.get(b"input"), rebuilt.get(b"input")))
    ours, theirs = _decoded(live.get(b"info"), "info"), _decoded(rebuilt.get(b"info"), "info")
    details += _fields("info", ours, theirs)
    call_keys = sorted(k for k in set(live) | set(rebuilt) if k.startswith(b"c/"))
    for key in call_keys:
        ours_c, theirs_c = _decoded(live.get(key), "call"), _decoded(rebuilt.get(key), "call")
        details += _fields(f"call #{int(key[2:]) + 1}", ours_c, theirs_c)
    return details


def _decoded(raw: bytes | None, kind: str) -> Any:
    if raw is None:
        return None
    return serde.load_info(raw, "") if kind == "info" else serde.load_call(raw)


def _fields(what: str, live: Any, rebuilt: Any) -> list[str]:
    if live is None or rebuilt is None:
        return [] if live is rebuilt else [_side(what, live, rebuilt)]
    return [
        _side(f"{what}.{f.name}", getattr(live, f.name), getattr(rebuilt, f.name))
        for f in dataclasses.fields(live)
        if getattr(live, f.name) != getattr(rebuilt, f.name)
    ]


def _side(what: str, live: Any, rebuilt: Any, width: int = 120) -> str:
    def text(value: Any) -> str:
        shown = value.decode(errors="replace") if isinstance(value, bytes) else repr(value)
        return shown if len(shown) <= width else shown[: width - 3] + "..."

    return f"{what}: live {text(live)}, rebuilt {text(rebuilt)}"


def _timers(store: Store) -> dict[str, set[tuple[int, str]]]:
    found: dict[str, set[tuple[int, str]]] = defaultdict(set)
    for key, _ in store.scan(keys.TIMERS):
        due, instance_id, timer = keys.parse_timer(key)
        found[instance_id].add((due, timer))
    return found


# -- limiters and counts -----------------------------------------------------------------


def _limiters(store: Store) -> dict[str, tuple[int, list[str], list[str]]]:
    """limiter key -> (limit, holders in order, queued in queue order)."""
    found: dict[str, tuple[int, list[str], list[str]]] = {}
    for key, value in store.scan(LIMITERS):
        state = serde.load_limiter(value)
        queued = [entry.decode() for _, entry in store.scan(keys.queue_prefix(state.key))]
        found[key[len(LIMITERS) :].decode()] = (state.limit, sorted(state.running), queued)
    return found


def _counts(raw: bytes | None) -> dict[str, int]:
    return {k: v for k, v in counts.load(raw or b"{}").items() if v}
