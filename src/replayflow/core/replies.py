"""Answers to callers (replayflow.replies) and what each orchestrator runs
(replayflow.orchestrators): the records of the edge, beside the engine's own messages in
core/messages.py (the codec maps both to their Avro records by name)."""

from __future__ import annotations

from dataclasses import dataclass

from replayflow.core.fast_init import fast_inits

#: Kafka header a caller sets on a command to get a Reply (its value, UTF-8).
REQUEST_ID_HEADER = "replayflow-request-id"


@dataclass(frozen=True)
class Reply:
    """The orchestrator's answer to a command that asked for one, on replayflow.replies:
    ACCEPTED, UNCHANGED (nothing to do) or REJECTED (with the reason and its kind)."""

    instance_id: str
    request_id: str
    command: str
    outcome: str
    at: int
    status: str | None = None
    reason: str = ""
    error_type: str | None = None


@dataclass(frozen=True)
class OrchestratorWorkflows:
    """The code workflows one orchestrator runs ('<name>:<version>'), on the compacted
    replayflow.orchestrators topic keyed by its id."""

    orchestrator: str
    host: str
    started_at: int
    workflows: list[str]


fast_inits(globals())
