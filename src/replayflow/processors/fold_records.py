"""What a fold produces besides state: the records of a batch (history, tasks,
completions, stream markers, dead letters, replies), each kept with the message it
encodes, and the outcome of folding one command. Split from fold.py, which stages
them; the limits here keep every produced record under the topic's size limit."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any

from replayflow import codec
from replayflow.core.clip import MAX_ECHO, MAX_REASON, clip
from replayflow.core.decision import Decision
from replayflow.core.fast_init import fast_init
from replayflow.core.messages import (
    Command,
    CompleteStep,
    Completion,
    DeadLetter,
    StepCompleted,
)
from replayflow.core.replies import Reply
from replayflow.core.state import InstanceState, Status
from replayflow.core.stream_records import StreamAttemptAccepted, StreamEnded

# The largest record a decision may produce. topics.yaml allows 8 MiB per record; the
# rest is room for the envelope. A decision that would exceed it is refused (its command
# goes to the dead-letter topic) instead of failing the transaction again and again.
MAX_RECORD_BYTES = 7 * 1024 * 1024

Source = tuple[str, int, int, bytes | None, bytes | None]

# What a dead letter keeps of its input. A valid command is at most a payload (1 MiB)
# and a small envelope, so any command refused for its content is kept whole; past
# these limits a dead letter keeps the size and SHA-256 instead (and topic, partition
# and offset say where the original is). With the reason cut to MAX_REASON characters,
# a dead letter stays far below MAX_RECORD_BYTES whatever the input.
MAX_KEPT_KEY = 1024
MAX_KEPT_VALUE = 2 * 1024 * 1024
MAX_LOGGED_REASON = 500  # characters of a reason in the log line


@fast_init
@dataclass(frozen=True)
class Outcome:
    """What folding one command came to: ACCEPTED, UNCHANGED or REJECTED (with the
    reason, its kind for a caller waiting on a Reply, and the type its dead letter
    gets otherwise), and the instance's status afterwards."""

    name: str
    status: str | None = None
    rejected: str | None = None
    kind: str | None = None
    dead_letter_type: str = "Rejected"

    @classmethod
    def refused(
        cls, reason: str, kind: str, dead_letter_type: str, state: InstanceState | None
    ) -> Outcome:
        status = None if state is None else state.status.value
        return cls("REJECTED", status, reason, kind, dead_letter_type)


@functools.cache
def outcome_of(name: str, status: Status | None) -> Outcome:
    """An outcome that is not a refusal: a frozen few, shared (one per kind). (An enum's
    .value is a Python-level property: it is read once per kind here.)"""
    return Outcome(name=name, status=None if status is None else status.value)


@fast_init
@dataclass(frozen=True, slots=True)
class Record:
    """One record to produce: `partition` None means by key (murmur2). `message` is
    the object `value` encodes, for readers in the same process (the test engine).
    Slots: a batch holds a record for each of thousands of outputs, and walks them to
    produce and to free them; without an instance dict a record is half the size
    and foldbench's CPU per command about 2 % less."""

    topic: str  # logical topic name: commands, history, tasks, completions, dlq, state, streams
    key: bytes | None
    value: bytes | None
    partition: int | None
    message: Any = field(default=None, compare=False, repr=False)


def make_record(topic: str, key: bytes | None, message: Any, partition: int | None) -> Record:
    return Record(topic, key, codec.encode(message), partition, message)


def largest_value(writes: dict[bytes, bytes | None], records: list[Record]) -> int:
    """The size of the largest state write or record value of a decision (None, a
    delete or a record not encoded, has none). Loops, not max() over lists or
    iterators made for the half dozen values of every decision: half the time."""
    largest = 0
    for value in writes.values():
        if value is not None and len(value) > largest:
            largest = len(value)
    for record in records:
        value = record.value
        if value is not None and len(value) > largest:
            largest = len(value)
    return largest


def reply_record(
    key: bytes | None, request_id: str, command: str, outcome: Outcome, now: int, partition: int
) -> Record:
    """The answer to a command whose caller waits (see Reply)."""
    reply = Reply(
        instance_id=(key or b"").decode("utf-8", "replace"),
        request_id=request_id,
        command=command,
        outcome=outcome.name,
        at=now,
        status=outcome.status,
        reason=outcome.rejected or "",
        error_type=outcome.kind if outcome.rejected is not None else None,
    )
    return make_record("replies", key, reply, partition)


def stream_end(key: bytes, completion: Completion) -> Record:
    # The instance's streams end with it, in the transaction that records the ending:
    # readers stop here, after every value of the steps that completed before.
    ended = StreamEnded(
        instance_id=completion.instance_id, status=completion.status, at=completion.at
    )
    return make_record("streams", key, ended, None)


def stream_accepted(key: bytes, command: Command, decision: Decision, now: int) -> list[Record]:
    # A streamed attempt's values count once its result is accepted, in the same
    # transaction: a result the fold ignores (its attempt timed out) releases nothing.
    if not isinstance(command, CompleteStep) or not command.streamed:
        return []
    accepted = any(
        isinstance(e, StepCompleted) and e.step == command.step and e.attempt == command.attempt
        for e in decision.events
    )
    if not accepted:
        return []
    marker = StreamAttemptAccepted(
        instance_id=command.instance_id, step=command.step, attempt=command.attempt, at=now
    )
    return [make_record("streams", key, marker, None)]


def dead_letter_record(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    reason: str,
    error_type: str,
    now: int,
) -> DeadLetter:
    """A DeadLetter that always fits on the topic: the reason cut to MAX_REASON
    characters; key and value kept up to MAX_KEPT_KEY / MAX_KEPT_VALUE bytes, and
    described by size and SHA-256 in any case."""
    return DeadLetter(
        source_topic=clip(topic, MAX_ECHO),
        partition=partition,
        offset=offset,
        key=key if key is None or len(key) <= MAX_KEPT_KEY else None,
        value=value if value is None or len(value) <= MAX_KEPT_VALUE else None,
        reason=_reason(reason, key, value),
        error_type=clip(error_type, MAX_ECHO),
        at=now,
        key_size=None if key is None else len(key),
        key_sha256=None if key is None else hashlib.sha256(key).hexdigest(),
        value_size=None if value is None else len(value),
        value_sha256=None if value is None else hashlib.sha256(value).hexdigest(),
    )


def _reason(reason: str, key: bytes | None, value: bytes | None) -> str:
    dropped = [
        f"the {what} ({len(data)} bytes, over the {limit}-byte limit) is not kept"
        for what, data, limit in (("key", key, MAX_KEPT_KEY), ("value", value, MAX_KEPT_VALUE))
        if data is not None and len(data) > limit
    ]
    note = f" [{'; '.join(dropped)}: see its size and SHA-256]" if dropped else ""
    return clip(reason, MAX_REASON - len(note)) + note


def unencoded_record(topic: str, key: bytes | None, message: Any, partition: int | None) -> Record:
    return Record(topic, key, None, partition, message)
