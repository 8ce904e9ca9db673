"""When Kafka does not answer: a short command gives up after the connect timeout with
one line (KafkaUnreachable); a long-running process says "waiting for Kafka" once per
interval and carries on by itself when the broker is back (Outage)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError

from replayflow.core.errors import ReplayflowError
from replayflow.kafka.config import LOG_INTERVAL, RateLimit

#: Error codes that mean "the cluster cannot be reached now" (not "it refused").
TRANSPORT_ERRORS = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError._TIMED_OUT,
        KafkaError._MSG_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.REQUEST_TIMED_OUT,
    }
)


class KafkaUnreachable(ReplayflowError, ConnectionError):
    """No broker answered within the connect timeout (REPLAYFLOW_CONNECT_TIMEOUT)."""

    def __init__(self, bootstrap: str, timeout: float, refused: bool = False) -> None:
        why = "connection refused" if refused else f"no answer within {timeout:g} s"
        super().__init__(
            f"cannot reach Kafka at {bootstrap} ({why}) — is it running? "
            "`make up` starts the local broker; KAFKA_BOOTSTRAP points elsewhere"
        )
        self.bootstrap = bootstrap
        self.timeout = timeout
        self.refused = refused


def is_transport(error: Any) -> bool:
    """Whether a KafkaError (or anything carrying one) says the cluster is unreachable."""
    code = getattr(error, "code", None)
    return callable(code) and code() in TRANSPORT_ERRORS


class Outage:
    """One long-running client's (or process's) view of its connection to Kafka.

    Clients report errors with `error()` (their error callback); while the cluster is
    unreachable one "waiting for Kafka" line goes out per `interval`, and `check()`,
    called from the process's loop, probes the cluster (at most every `retry` seconds)
    and says when it answers again. Other errors are logged, rate-limited."""

    def __init__(
        self,
        bootstrap: str,
        who: str,
        log: logging.Logger,
        *,
        interval: float = LOG_INTERVAL,
        retry: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bootstrap = bootstrap
        self.who = who
        self.log = log
        self.interval = interval
        self.retry = retry
        self._clock = clock
        self.since: float | None = None  # when the outage began
        self.ended: float | None = None  # when the last outage ended
        self._said = 0.0
        self._probed = 0.0
        self.lines = 0  # "waiting" lines logged (for tests)
        self._others = RateLimit(interval, clock)

    @property
    def down(self) -> bool:
        return self.since is not None

    def lately(self, within: float) -> bool:
        """Whether the cluster is unreachable now or was within the last `within` s."""
        return self.down or (self.ended is not None and self._clock() - self.ended < within)

    def error(self, error: Any) -> None:
        if is_transport(error):
            self.unreachable(getattr(error, "str", lambda: str(error))())
            return
        record = self.log.makeRecord(
            self.log.name, logging.WARNING, __file__, 0, "%s: %s", (self.who, error), None
        )
        if self._others.filter(record):
            self.log.handle(record)

    def unreachable(self, reason: str) -> None:
        now = self._clock()
        if self.since is None:
            self.since = now
            self._probed = now
        elif now - self._said < self.interval:
            return
        self._said = now
        self.lines += 1
        self.log.warning(
            "%s: waiting for Kafka at %s (%s; unreachable for %.0f s)",
            self.who,
            self.bootstrap,
            reason,
            now - self.since,
        )

    def check(self, probe: Callable[[], object]) -> None:
        """While the cluster is down, call `probe` (a metadata request that raises when
        nobody answers) now and then; when it succeeds, the outage is over."""
        if self.since is None:
            return
        now = self._clock()
        if now - self._probed < self.retry:
            return
        self._probed = now
        try:
            probe()
        except Exception:
            return
        self.recovered()

    def recovered(self) -> None:
        if self.since is None:
            return
        self.log.info(
            "%s: Kafka at %s answers again (unreachable for %.0f s)",
            self.who,
            self.bootstrap,
            self._clock() - self.since,
        )
        self.since = None
        self.ended = self._clock()
