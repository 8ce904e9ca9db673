"""Key layout of a partition store. Keys sort so that prefix scans find one instance's
calls in order, timers by due time, and an admission queue first in, first out.

    i/<instance>\\0info             instance info (all but the input)
    i/<instance>\\0input            the instance's input, written once
    i/<instance>\\0c/<index:08d>    one call record
    t/<due:015d>/<instance>\\0<timer> timer index (value empty)
    l/<limiter>                     limiter state
    q/<limiter>\\0<ticket:016d>      admission queue entry (value: instance id)
    s/<schedule id>                 schedule state (its timer: owner `~schedule:<id>`)
    sd/<schedule id>                schedule definition: spec, action, policies
    m/changelog-offset              last changelog offset applied (see PartitionStore)
    m/status-counts                 instances by gauge status (see counts.py)
    m/written-at                    wall-clock ms of the last write

An instance id may contain '/' (a child's is "<parent>/<name>") but never NUL, so NUL
ends the id and one instance's prefix never covers another's keys. The timer index
holds every entity's timers under its key: an instance's id, or a schedule's
`~schedule:<id>` (core/entities.timer_command tells them apart).
"""

from __future__ import annotations

CHANGELOG_OFFSET = b"m/changelog-offset"
WRITTEN_AT = b"m/written-at"  # wall-clock ms of the last write: how stale a store is
STATUS_COUNTS = b"m/status-counts"
INSTANCES = b"i/"
TIMERS = b"t/"
SCHEDULES = b"s/"


def info(instance_id: str) -> bytes:
    return f"i/{instance_id}\0info".encode()


def input(instance_id: str) -> bytes:
    return f"i/{instance_id}\0input".encode()


def calls_prefix(instance_id: str) -> bytes:
    return f"i/{instance_id}\0c/".encode()


def call(instance_id: str, index: int) -> bytes:
    return f"i/{instance_id}\0c/{index:08d}".encode()


def timer(due: int, instance_id: str, timer_id: str) -> bytes:
    return f"t/{due:015d}/{instance_id}\0{timer_id}".encode()


def parse_timer(key: bytes) -> tuple[int, str, str]:
    due, rest = key[2:].decode().split("/", 1)
    instance_id, timer_id = rest.split("\0", 1)
    return int(due), instance_id, timer_id


def timer_due(key: bytes) -> int:
    return int(key[2:17])


def timers_from(due: int) -> bytes:
    """The first key of every timer due at or after `due`."""
    return f"t/{max(due, 0):015d}/".encode()


def timers_due_before(now: int) -> bytes:
    """The first key after every timer due at or before `now`."""
    return f"t/{now + 1:015d}/".encode()


def schedule(schedule_id: str) -> bytes:
    return SCHEDULES + schedule_id.encode()


def schedule_definition(schedule_id: str) -> bytes:
    return b"sd/" + schedule_id.encode()


def limiter(key: str) -> bytes:
    return f"l/{key}".encode()


def queue_prefix(limiter_key: str) -> bytes:
    return f"q/{limiter_key}\0".encode()


def queue_entry(limiter_key: str, ticket: int) -> bytes:
    return queue_prefix(limiter_key) + f"{ticket:016d}".encode()


def queue_ticket(key: bytes) -> int:
    return int(key.rsplit(b"\0", 1)[1])
