"""What the orchestrator accepts from replayflow.commands: a record decodes to a command
that may come from outside, keyed and partitioned as its entity is. Anything else is
refused with a reason for the dead-letter topic. Reasons quote the input only through
core/clip.py, so their size never follows the input's."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from replayflow import codec
from replayflow.core.clip import clip, clip_repr
from replayflow.core.entities import AnyCommand, Entity, route
from replayflow.core.errors import ValidationError
from replayflow.core.messages import AcquireSlot, FireTimer, GrantSlot, ReleaseSlot
from replayflow.core.names import MAX_ID_LENGTH, check_instance_id
from replayflow.core.replies import REQUEST_ID_HEADER
from replayflow.core.schedule_messages import FireSchedule, ScheduleRunEnded
from replayflow.core.schedule_state import check_schedule_id
from replayflow.kafka.partition import murmur2_partition

# An instance gets several commands: where its key belongs is worked out once.
_partition_of = lru_cache(maxsize=1 << 16)(murmur2_partition)

# Set on the commands the orchestrator itself produces (admission grants and releases,
# a run's end reported to its schedule).
ORIGIN_HEADER = ("replayflow-origin", b"orchestrator")


def request_id_of(headers: Any) -> str | None:
    """The caller's request id (it waits for a Reply), if the command carries one."""
    for header in headers or ():
        name, value = header[0], header[1]
        if name == REQUEST_ID_HEADER and value:
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            return text[:200]
    return None


# Commands only the orchestrator produces (with ORIGIN_HEADER).
_INTERNAL = AcquireSlot | ReleaseSlot | GrantSlot | ScheduleRunEnded


class Refused(ValidationError):
    """A record that is not folded: `reason` and `error_type` go to its dead letter."""

    def __init__(self, reason: str, error_type: str, command: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type
        self.command = command  # its record's name, once it decoded (for a Reply)


def accept(
    key: bytes | None,
    value: bytes | None,
    partition: int,
    partitions: int,
    headers: Any,
) -> AnyCommand:
    """The command a record holds, or Refused saying why it is not one to fold here."""
    try:
        command = codec.decode(value or b"")
    except codec.CodecError as exc:
        raise Refused(f"undecodable command: {exc.reason}", "CodecError") from None
    if not isinstance(command, AnyCommand) or isinstance(command, FireTimer | FireSchedule):
        # FireTimer and FireSchedule are made by the orchestrator itself; from outside
        # they would let anyone end a sleep early or fire a schedule off its time.
        name = type(command).__name__
        raise Refused(f"{name} is not a command accepted on this topic", "NotACommand", name)
    name = type(command).__name__
    internal = isinstance(headers, list) and ORIGIN_HEADER in headers
    if (
        isinstance(command, AcquireSlot | ReleaseSlot | GrantSlot | ScheduleRunEnded)
        and not internal
    ):
        raise Refused(
            f"{type(command).__name__} is internal to the orchestrator", "NotACommand", name
        )
    entity = route(command)
    target = entity.key
    if entity.entity is Entity.INSTANCE:
        try:
            check_instance_id(target)
        except ValidationError:
            # The check's own message repeats the whole id: say it again, bounded.
            raise Refused(
                f"invalid instance id {clip_repr(target)} ({len(target)} characters): 1 to "
                f"{MAX_ID_LENGTH} characters of letters, digits and ._:@/+=- starting with a "
                "letter or digit",
                "Rejected",
                name,
            ) from None
    elif entity.entity is Entity.SCHEDULE:
        try:
            check_schedule_id(getattr(command, "schedule_id", None))
        except ValidationError as exc:
            raise Refused(clip(str(exc)), "Rejected", name) from None
    record_key = entity.record_key
    if key != record_key:
        what = "instance id" if entity.entity is Entity.INSTANCE else f"{entity.entity.value} key"
        raise Refused(
            f"the record key {clip_repr(key)} is not the {what} {clip_repr(target)}",
            "WrongKey",
            name,
        )
    expected = _partition_of(record_key, partitions)
    if partition != expected:
        raise Refused(
            f"{clip_repr(target)} belongs on partition {expected} (murmur2 of the key, as Java "
            f"clients partition), not {partition}: produce with the murmur2 partitioner",
            "WrongPartition",
            name,
        )
    return command
