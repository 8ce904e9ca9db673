"""One consumed record into its partition's fold: the command it holds is folded, or,
when it holds none to fold here (processors/intake.py) or its fold fails, the caller
that waits is answered and other input goes to the dead-letter topic with the reason."""

from __future__ import annotations

import logging

from confluent_kafka import Message

from replayflow import telemetry
from replayflow.core.clip import MAX_ECHO, clip, clip_traceback
from replayflow.kafka.reading import located
from replayflow.processors.fold import PartitionFolder
from replayflow.processors.fold_records import Outcome
from replayflow.processors.intake import Refused, accept, request_id_of

log = logging.getLogger("replayflow.orchestrator")


def fold_message(folder: PartitionFolder, message: Message, now: int, partitions: int) -> bool:
    """Fold the record; False when it went to the dead-letter topic."""
    key, value = message.key(), message.value()
    source = (*located(message), key, value)
    headers = message.headers()  # a new list at each call: read once
    request_id = request_id_of(headers)

    def refuse(command: str, reason: str, error_type: str) -> bool:
        # A caller that waits is answered; other bad input goes to the DLQ.
        if request_id is not None:
            outcome = Outcome.refused(reason, error_type, error_type, None)
            folder.reply(key, request_id, command, outcome, now)
            return True
        folder.dead_letter(source, reason, error_type, now)
        return False

    try:
        command = accept(key, value, source[1], partitions, headers or None)
    except Refused as refused:
        return refuse(refused.command, refused.reason, refused.error_type)
    name = type(command).__name__
    try:
        folder.fold(command, now, source, request_id)
    except Exception as exc:  # a bug must not block the partition: park the input
        instance_id = getattr(command, "instance_id", None)
        log.error(
            "folding %s failed:\n%s",
            name,
            clip_traceback(exc),
            extra=telemetry.fields(None if instance_id is None else clip(instance_id, MAX_ECHO)),
        )
        return refuse(name, f"the fold failed: {type(exc).__name__}: {exc}", "FoldError")
    return True
