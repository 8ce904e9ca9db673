"""What a client follows while it waits: the completions of instances (results) and the
orchestrator's replies to its commands. Each follower starts at the topic's end when it
is created, before anything it waits for is sent, so nothing it waits for is missed.
And what the orchestrators run, read now and then to refuse unknown starts at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from replayflow import codec
from replayflow.core.errors import UnknownWorkflow
from replayflow.core.messages import Completion, StartWorkflow
from replayflow.core.replies import Reply
from replayflow.kafka import clients
from replayflow.kafka.membership import close_consumer
from replayflow.kafka.reading import end_offsets, read_to_end
from replayflow.processors.served import Served
from replayflow.settings import Settings

#: Seconds a client keeps what the orchestrators run before reading it again.
SERVED_TTL = 30.0
#: How long, and how often, an unknown workflow is looked up again before a refusal.
RECHECK_FOR = 1.5
RECHECK_EVERY = 0.25


class _Follower(threading.Thread):
    """A daemon thread reading every partition of one topic from its end at creation;
    `take` gets each decoded record under the lock, waiters use `changed`."""

    def __init__(self, settings: Settings, topic: str, partitions: int, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._consumer = clients.consumer(settings, None)
        self._consumer.assign(end_offsets(self._consumer, topic, range(partitions)))
        self.changed = threading.Condition()
        self._stopping = threading.Event()

    def take(self, record: Any) -> None:
        raise NotImplementedError

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                # poll() returns with the first record (a batch call would wait out its
                # whole timeout unless the batch filled), then the rest already fetched.
                first = self._consumer.poll(0.1)
                if first is None:
                    continue
                messages = [first, *self._consumer.consume(999, timeout=0)]
                with self.changed:
                    for message in messages:
                        if message.error() is not None:
                            continue
                        try:
                            self.take(codec.decode(message.value() or b""))
                        except codec.CodecError:
                            continue
                    self.changed.notify_all()
        finally:
            close_consumer(self._consumer)

    def close(self) -> None:
        self._stopping.set()


class CompletionWatcher(_Follower):
    """Completions of every instance that ends after the watcher started, in order (an
    instance restarted after it ended completes again)."""

    def __init__(self, settings: Settings, topic: str, partitions: int) -> None:
        super().__init__(settings, topic, partitions, "replayflow-completions")
        self.completions: dict[str, list[Completion]] = {}

    def take(self, record: Any) -> None:
        if isinstance(record, Completion):
            self.completions.setdefault(record.instance_id, []).append(record)

    def seen(self, instance_id: str) -> int:
        with self.changed:
            return len(self.completions.get(instance_id, ()))

    def latest(self, instance_id: str) -> Completion | None:
        with self.changed:
            found = self.completions.get(instance_id)
            return found[-1] if found else None

    def wait(self, instance_id: str, timeout: float | None, after: int = 0) -> Completion | None:
        """The first completion of `instance_id` beyond the `after` seen already."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.changed:
            while len(self.completions.get(instance_id, ())) <= after:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self.changed.wait(left if left is not None else 1.0)
            return self.completions[instance_id][after]


class ReplyWatcher(_Follower):
    """Replies to the request ids a client expects (others are skipped)."""

    def __init__(self, settings: Settings, topic: str, partitions: int) -> None:
        super().__init__(settings, topic, partitions, "replayflow-replies")
        self._expected: dict[str, Reply | None] = {}

    def take(self, record: Any) -> None:
        if isinstance(record, Reply) and record.request_id in self._expected:
            self._expected[record.request_id] = record

    def expect(self, request_ids: Iterable[str]) -> None:
        """Register ids before their commands are sent."""
        with self.changed:
            for request_id in request_ids:
                self._expected[request_id] = None

    def wait(self, request_ids: list[str], timeout: float) -> dict[str, Reply]:
        """The replies that arrived within `timeout` seconds, by request id (the ids are
        forgotten afterwards, answered or not)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            try:
                while any(self._expected.get(r) is None for r in request_ids):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.changed.wait(left)
                return {r: reply for r in request_ids if (reply := self._expected.get(r))}
            finally:
                for request_id in request_ids:
                    self._expected.pop(request_id, None)


class ServedCache:
    """What the orchestrators run (processors/served.py), read at most every SERVED_TTL
    seconds, and again before refusing a start (an orchestrator may have just begun)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._served: Served | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def get(self, refresh: bool = False) -> Served:
        with self._lock:
            if self._served is None or refresh or time.monotonic() - self._at > SERVED_TTL:
                self._served = Served.load(self.settings)
                self._at = time.monotonic()
            return self._served

    def check(self, starts: list[StartWorkflow]) -> None:
        """UnknownWorkflow (with the `index` of the first unknown start when there are
        several) unless every start names a workflow version some orchestrator runs.
        Before refusing, the record is read again for up to RECHECK_FOR seconds: an
        orchestrator that just started, or whose registry just grew, says so within a
        fraction of a second."""
        served = self.get()
        deadline = time.monotonic() + RECHECK_FOR
        while True:
            unknown = [
                (i, reason)
                for i, s in enumerate(starts)
                if (reason := served.unknown(s.workflow, s.version))
            ]
            if not unknown:
                return
            if time.monotonic() > deadline:
                break
            time.sleep(RECHECK_EVERY)
            served = self.get(refresh=True)
        index, reason = unknown[0]
        error = UnknownWorkflow(
            starts[index].instance_id, "StartWorkflow", reason, "UnknownWorkflow"
        )
        error.index = index if len(starts) > 1 else None
        raise error


def scan_key(settings: Settings, topic: str, partition: int, key: bytes) -> list[Any]:
    """The decodable records of one key in one partition, read to its current end."""
    consumer = clients.consumer(settings, None)
    try:
        records = []
        for messages in read_to_end(consumer, topic, [partition]):
            for message in messages:
                if message.key() == key:
                    try:
                        records.append(codec.decode(message.value() or b""))
                    except codec.CodecError:
                        continue
        return records
    finally:
        close_consumer(consumer)
