"""Whether a command arrived where it belongs: the orchestrator's check before folding.

An instance lives on the partition murmur2 gives its id: a command keyed or
partitioned otherwise would create a second copy of the instance elsewhere. Admission
commands are the orchestrator's own and carry its origin header.
"""

from __future__ import annotations

from confluent_kafka import Message

from replayflow.core.entities import Entity, route
from replayflow.core.errors import ValidationError
from replayflow.core.messages import AcquireSlot, Command, GrantSlot, ReleaseSlot
from replayflow.core.names import check_instance_id
from replayflow.kafka.partition import murmur2_partition
from replayflow.processors.cadence import ORIGIN_HEADER

#: Keys whose routing is remembered (an instance sends several commands).
CACHED_KEYS = 100_000

Problem = tuple[str, str]  # (reason, error type) for the dead-letter record


def internal(message: Message) -> bool:
    return ORIGIN_HEADER in (message.headers() or [])


class Router:
    def __init__(self) -> None:
        # Per record key: the partition it belongs on, and what is wrong with its id.
        self._known: dict[bytes, tuple[int, int, Problem | None]] = {}

    def misrouted(self, command: Command, message: Message, partitions: int) -> Problem | None:
        """Why `command` must not be folded where `message` arrived, or None."""
        if isinstance(command, AcquireSlot | ReleaseSlot | GrantSlot) and not internal(message):
            return (
                f"{type(command).__name__} is internal to the orchestrator",
                "NotACommand",
            )
        entity = route(command)
        target = entity.key
        key = entity.record_key
        if message.key() != key:
            invalid = _invalid(entity.entity, target)
            if invalid is not None:
                return invalid
            return (
                f"the record key {message.key()!r} is not the instance id {target!r}",
                "WrongKey",
            )
        # The key names the entity: whether its id is valid and where it belongs are the
        # same for every command it gets, so they are worked out once per key.
        known = self._known.get(key)
        if known is None or known[0] != partitions:
            expected = murmur2_partition(key, partitions)
            known = (partitions, expected, _invalid(entity.entity, target))
            if len(self._known) >= CACHED_KEYS:
                self._known.clear()
            self._known[key] = known
        _, expected, invalid = known
        if invalid is not None:
            return invalid
        partition = message.partition()
        if partition != expected:
            return (
                f"{target!r} belongs on partition {expected} (murmur2 of the key, as Java "
                f"clients partition), not {partition}: produce with the murmur2 partitioner",
                "WrongPartition",
            )
        return None


def _invalid(entity: Entity, target: str) -> Problem | None:
    if entity is Entity.INSTANCE:
        try:
            check_instance_id(target)
        except ValidationError as exc:
            return str(exc), "Rejected"
    return None
