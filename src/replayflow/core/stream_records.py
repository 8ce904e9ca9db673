"""The records of replayflow.streams (schemas/streams/): values that steps write to an
instance's named streams, and the markers that tell readers which values count.

Kept apart from core/messages.py: these never pass through the fold, which only
writes StreamAttemptAccepted next to a streamed step's StepCompleted and StreamEnded
next to an instance's completion.
"""

from __future__ import annotations

from dataclasses import dataclass

from replayflow.core.fast_init import fast_inits

COMPLETED = "COMPLETED"
FAILED = "FAILED"


@dataclass(frozen=True)
class StreamValue:
    instance_id: str
    stream: str
    step: str
    attempt: int
    index: int
    value: str  # JSON text
    at: int


@dataclass(frozen=True)
class StreamClosed:
    instance_id: str
    stream: str
    step: str
    attempt: int
    at: int


@dataclass(frozen=True)
class StreamAttemptEnded:
    instance_id: str
    step: str
    attempt: int
    outcome: str  # COMPLETED or FAILED
    at: int


@dataclass(frozen=True)
class StreamAttemptAccepted:
    """Written by the orchestrator when it accepts the result of an attempt that wrote
    to a stream: only then do its values count (a worker's COMPLETED may come from an
    attempt the engine had already timed out)."""

    instance_id: str
    step: str
    attempt: int
    at: int


@dataclass(frozen=True)
class StreamEnded:
    instance_id: str
    status: str
    at: int


StreamRecord = StreamValue | StreamClosed | StreamAttemptEnded | StreamAttemptAccepted | StreamEnded
#: Records the orchestrator writes, inside its transactions (the others come from workers).
ENGINE_RECORDS = (StreamAttemptAccepted, StreamEnded)


fast_inits(globals())
