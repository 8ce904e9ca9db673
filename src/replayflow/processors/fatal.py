"""A fatal Kafka client error ends the process.

librdkafka calls an error fatal when the client can never work again: a transactional
producer fenced by a newer one with the same transactional id, a static group member
fenced by another process with the same group.instance.id (two orchestrators started
with one --id). Such a client would stay up doing nothing. The orchestrator's and the
worker's error callbacks hand every error to `on_error`; a fatal one is logged with
what to do about it and then, in a process started by the CLI (`exit_on_fatal()`),
ends the process at once with EXIT_FATAL so a supervisor restarts it. Code that runs
the orchestrator in-process (tests, embedding) gets FatalKafkaError raised from the
client call that met the error instead.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError

from replayflow.core.errors import ReplayflowError

log = logging.getLogger("replayflow.fatal")

#: Exit status of a process ended by a fatal Kafka error.
EXIT_FATAL = 3

_FENCED = frozenset(
    {
        KafkaError._FENCED,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
    }
)

_exit = False


class FatalKafkaError(ReplayflowError):
    """A Kafka client met an error it cannot recover from."""


def exit_on_fatal(enabled: bool = True) -> None:
    """Make a fatal error end this process (the CLI's long-running commands do)."""
    global _exit
    _exit = enabled


def is_fatal(error: Any) -> bool:
    """librdkafka reports a fatal error to the error callback with the code _FATAL (the
    error's own fatal flag set or not); other calls raise it with the flag set."""
    code = error.code() if callable(getattr(error, "code", None)) else None
    fatal = getattr(error, "fatal", None)
    return code == KafkaError._FATAL or (callable(fatal) and bool(fatal()))


def is_duplicate(error: Any) -> bool:
    """A fatal error that says another process runs with this one's id: a static group
    member fenced by a newer one with the same group.instance.id. Replacing the clients
    would only fence the other process back, so it ends this one."""
    code = error.code() if callable(getattr(error, "code", None)) else None
    text = error.str() if callable(getattr(error, "str", None)) else str(error)
    return code == KafkaError.FENCED_INSTANCE_ID or (
        is_fatal(error) and "group.instance.id" in text
    )


#: Seconds after an outage within which a fence is taken for the consumer's own rejoin.
FENCE_AFTER_OUTAGE = 60.0


class Fences:
    """Tells another process with this one's id from a client that fenced itself.

    A static member whose session timed out while the broker was away rejoins with a new
    member id, and an offset commit it sent under the old one comes back "fenced by
    other consumer with same group.instance.id": the process fenced itself, and a new
    client cures it. Such a fence comes during or right after an outage (`after_outage`)
    and only asks for new clients, however many outages there are. Another process with
    the same id fences while Kafka answers, and fences the new client again within
    seconds (each rejoin fences the other): the first such fence asks for new clients,
    a second one within `window` seconds ends the process (`repeated`). One fence
    reported twice (to the error callback and as a message) counts once."""

    SAME_FENCE = 0.5  # seconds within which two reports are one fence

    def __init__(self, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.window = window
        self._clock = clock
        self._last: float | None = None
        self.pending: str | None = None  # a fence to cure by replacing the clients

    def repeated(self, error: Any, after_outage: bool = False) -> bool:
        """Record `error` if it is a fence; True when it is the second within `window`
        while Kafka answered."""
        if not is_duplicate(error):
            return False
        if after_outage:
            self.pending = str(error)
            return False
        now = self._clock()
        last, self._last = self._last, now
        if last is not None and now - last <= self.SAME_FENCE:
            self._last = last
            return False
        if last is not None and now - last < self.window:
            return True
        self.pending = str(error)
        return False

    def take(self) -> str | None:
        """The fence waiting for new clients, once."""
        pending, self.pending = self.pending, None
        return pending


def describe(error: Any, who: str) -> str:
    code = error.code() if callable(getattr(error, "code", None)) else None
    text = error.str() if callable(getattr(error, "str", None)) else str(error)
    hint = ""
    if code in _FENCED or "fenced" in text.lower():
        hint = (
            " — another process runs with the same id (--id): give every orchestrator "
            "its own, or stop the other one"
        )
    return f"{who}: fatal Kafka error, stopping: {text}{hint}"


def on_error(error: Any, who: str) -> None:
    """For a client's error callback: nothing for a non-fatal error; for a fatal one,
    log why and exit the process (after exit_on_fatal()) or raise FatalKafkaError."""
    if not is_fatal(error):
        return
    message = describe(error, who)
    log.critical(message)
    if _exit:
        handlers = logging.getLogger().handlers
        for handler in handlers:
            handler.flush()
        if not handlers:
            print(message, file=sys.stderr, flush=True)
        # os._exit: the other threads and the client's own may be stuck in librdkafka;
        # nothing they hold is lost (state is written only after a committed batch).
        os._exit(EXIT_FATAL)
    raise FatalKafkaError(message)
