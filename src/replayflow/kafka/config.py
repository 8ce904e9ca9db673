"""Client configurations built from Settings: every replayflow producer, consumer and
admin client starts from these dictionaries."""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Any

from replayflow.settings import Settings

# Java clients hash keys with murmur2; librdkafka's default differs. Every producer of
# ours uses murmur2 so an instance's commands land on the partition any Java (or other
# murmur2) producer would pick (replayflow.kafka.partition computes the same).
PARTITIONER = "murmur2_random"

#: Seconds to wait for metadata, watermarks and acknowledgements before giving up.
METADATA_TIMEOUT = 30.0
FLUSH_TIMEOUT = 30.0
#: A transaction left open longer than this is aborted by the broker.
TRANSACTION_TIMEOUT_MS = 60_000
#: Longest wait between two attempts to reach a broker that is down. librdkafka doubles
#: the wait from 100 ms up to 10 s by default, so a client could find a restarted broker
#: up to 10 s late; 1 s is the Java clients' default.
RECONNECT_BACKOFF_MAX_MS = 1_000
#: The first backoff (ms) before a transactional request is tried again; it doubles on
#: each retry up to retry.backoff.max.ms. The common retry is CONCURRENT_TRANSACTIONS:
#: a transaction begun right after a commit asks to add its offsets while the
#: coordinator still writes the previous commit's markers, which takes a millisecond
#: or two. librdkafka's default backoff, 100 ms, made every back-to-back transaction
#: last 100 ms (benchmarks/relay.py measures it).
TRANSACTION_RETRY_BACKOFF_MS = 1
#: A transaction's records wait for its commit, which sends whatever is queued at once
#: (librdkafka's flush ignores linger): batching them costs no latency, and sending
#: them as they were produced cost the broker a produce request per millisecond of
#: folding.
TRANSACTION_LINGER_MS = 50

#: librdkafka's own log lines (connection refused, ...) go to this logger instead of
#: stderr; failures reach callers as exceptions.
LOG = logging.getLogger("replayflow.kafka")
LOG.addHandler(logging.NullHandler())

#: Seconds between two log lines that say the same thing (see RateLimit), and between
#: two "waiting for Kafka" lines: REPLAYFLOW_LOG_INTERVAL, default 30. Read here, not
#: from Settings: the filter sits on a module-level logger.
LOG_INTERVAL = float(os.environ.get("REPLAYFLOW_LOG_INTERVAL", "").strip() or 30.0)

#: librdkafka facilities whose lines are routine while a broker starts (a transactional
#: producer retrying for its producer id): logged at DEBUG, not as warnings.
QUIET_FACILITIES = frozenset({"GETPID"})


class RateLimit(logging.Filter):
    """Lets one line of a kind through per `interval` seconds; the next one that passes
    says how many were held back. A line's kind is its text without numbers and without
    the client's name, so "Connect to ... failed" from every client of a process while
    the broker is down is one kind. A broker outage thus logs a line per interval, not
    one per reconnect of every client (librdkafka retries within milliseconds)."""

    def __init__(
        self, interval: float = LOG_INTERVAL, clock: Any = None, only: tuple[str, ...] = ()
    ) -> None:
        super().__init__()
        import time

        self.only = only  # logger name prefixes to limit (on a handler); () = all
        self.interval = interval
        self._clock = clock or time.monotonic
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget what was logged (a test that needs the next line to pass)."""
        with self._lock:
            self._last.clear()
            self._held.clear()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.only and not record.name.startswith(self.only):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) == 3 and record.msg == "%s [%s] %s":
            # librdkafka's (facility, client name, message), as confluent-kafka logs it.
            facility, message = str(args[0]), str(args[2])
            if facility in QUIET_FACILITIES and record.levelno > logging.DEBUG:
                record.levelno, record.levelname = logging.DEBUG, "DEBUG"
                if not LOG.isEnabledFor(logging.DEBUG):
                    return False
            kind = facility + _DIGITS.sub("#", _THREAD.sub("", message))
        else:
            kind = _DIGITS.sub("#", record.getMessage())
        now = self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._held[kind] = self._held.get(kind, 0) + 1
                return False
            self._last[kind] = now
            held = self._held.pop(kind, 0)
            if len(self._last) > 1000:  # kinds are few; never let them pile up
                self._last = {kind: now}
        if held:
            text = record.getMessage()
            record.msg = f"{text} ({held} more like it in the last {self.interval:g} s)"
            record.args = None
        return True


_DIGITS = re.compile(r"\d+")
_THREAD = re.compile(r"^\[thrd:[^\]]*\]:\s*")
LOG.addFilter(RateLimit())


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap,
        "partitioner": PARTITIONER,
        "enable.idempotence": True,
        # A command waits at most a millisecond for company: latency first; under load
        # records batch anyway while earlier requests are in flight.
        "linger.ms": 1,
        # Requests are small and latency matters more than packets: no Nagle delay.
        "socket.nagle.disable": True,
        "compression.type": "lz4",
        # Records up to the topics' max.message.bytes (8 MiB) must fit in a request.
        "message.max.bytes": 10 * 1024 * 1024,
        "reconnect.backoff.max.ms": RECONNECT_BACKOFF_MAX_MS,
    }
    config.update(extra)
    return config


def transactional_config(settings: Settings, transactional_id: str, **extra: Any) -> dict[str, Any]:
    return producer_config(
        settings,
        **{
            "transactional.id": transactional_id,
            "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
            # While no broker answers, librdkafka re-bootstraps and decommissions the
            # brokers it knew; a group coordinator cached on a decommissioned broker is
            # never looked up again, so the first send_offsets_to_transaction after the
            # broker is back hangs (librdkafka #5511; #5456: its timeout is not kept).
            # Without re-bootstrap the known broker handles reconnect to the restarted
            # brokers (same names; addresses are resolved again on each connect).
            "metadata.recovery.strategy": "none",
            "retry.backoff.ms": TRANSACTION_RETRY_BACKOFF_MS,
            "linger.ms": TRANSACTION_LINGER_MS,
            **extra,
        },
    )


def consumer_config(settings: Settings, group: str | None, **extra: Any) -> dict[str, Any]:
    """A read_committed consumer without auto commit. `group` is a role ("worker")
    made into a namespaced group id; None leaves the group to the caller (readers
    that assign partitions pass their own throwaway group.id)."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
        "reconnect.backoff.max.ms": RECONNECT_BACKOFF_MAX_MS,
        "socket.nagle.disable": True,
        # How long the broker may park a fetch that finds nothing new. A transaction's
        # commit markers usually wake a parked read_committed fetch at once, but not
        # always: in some runs every hop of benchmarks/relay.py's chain took this long
        # (~90 ms of 100). A short wait bounds that; an idle consumer pays with fifty
        # fetches a second.
        "fetch.wait.max.ms": 20,
    }
    if group is not None:
        config["group.id"] = group_name(settings, group)
    config.update(extra)
    return config


def admin_config(bootstrap: Settings | str, **extra: Any) -> dict[str, Any]:
    servers = bootstrap.bootstrap if isinstance(bootstrap, Settings) else bootstrap
    return {"bootstrap.servers": servers, **extra}


def group_name(settings: Settings, role: str) -> str:
    base = f"replayflow.{role}"
    return f"{settings.namespace}.{base}" if settings.namespace else base
