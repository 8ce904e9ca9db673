"""The schedule suite's engines, one interface:

    engine.schedules            the schedule operations (ScheduleOps)
    engine.now                  the engine's time, ms (virtual in both engines)
    engine.advance(d)           time passes; timers fire as they come due
    engine.outage(d)            time passes with no orchestrator; it starts again after
    engine.instances(workflow)  instance ids of the workflow, sorted (slot order)
    engine.status(instance_id)  RUNNING, COMPLETED, ... (None: no such instance)
    engine.send_event(id, name, payload)
    engine.facts(schedule_id)   the schedule's facts, in order

"memory" is rf.testing.Environment. "kafka" is the orchestrator on the real broker with
its clock handed in (a virtual clock the test moves), its store in RocksDB, commands and
history on Kafka, driven through the client's schedule operations.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from replayflow import codec
from replayflow.cli.run import declare_document_schedules
from replayflow.client import Client
from replayflow.client_schedules import ClientSchedules
from replayflow.core.definitions import Registry, WorkflowDef
from replayflow.core.durations import Duration, to_ms
from replayflow.core.messages import (
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
    WorkflowTerminated,
    WorkflowTimedOut,
)
from replayflow.core.schedule_messages import ScheduleEvent
from replayflow.core.schedule_state import schedule_key
from replayflow.dsl.documents import DocumentStore
from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.producing import deliver
from replayflow.kafka.reading import read_to_end
from replayflow.processors.documents import KafkaDocumentLog
from replayflow.processors.orchestrator import Orchestrator
from replayflow.settings import Settings
from replayflow.store import keys
from replayflow.testing import Environment
from replayflow.topics import Topics, apply_topics, load_topics

ENDINGS = {
    WorkflowCompleted: "COMPLETED",
    WorkflowFailed: "FAILED",
    WorkflowCancelled: "CANCELLED",
    WorkflowTerminated: "TERMINATED",
    WorkflowTimedOut: "TIMED_OUT",
}


def _name(workflow: WorkflowDef | str) -> str:
    return workflow.name if isinstance(workflow, WorkflowDef) else workflow


class MemoryEngine:
    name = "memory"

    def __init__(self, start: datetime, *modules: ModuleType, orchestrators: int = 1) -> None:
        self.env = Environment(*modules, start=start)
        self.schedules = self.env.schedules
        # Every further orchestrator declares the code's schedules again when it starts.
        for _ in range(orchestrators - 1):
            for declaration in self.env.registry.schedule_declarations():
                self.env.deliver(declaration)

    @property
    def now(self) -> int:
        return self.env.now

    def advance(self, duration: Duration) -> None:
        self.env.advance(duration)

    def outage(self, duration: Duration) -> None:
        self.env.outage(duration)

    def instances(self, workflow: WorkflowDef | str) -> list[str]:
        return sorted(self.env.instances(_name(workflow)))

    def status(self, instance_id: str) -> str | None:
        state = self.env.states.get(instance_id)
        return None if state is None else state.status.value

    def send_event(self, instance_id: str, name: str, payload: Any = None) -> None:
        self.env.send_event(instance_id, name, payload)

    def facts(self, schedule_id: str) -> list[ScheduleEvent]:
        return self.env.schedules.history(schedule_id)

    def close(self) -> None:
        pass


class VirtualClock:
    def __init__(self, start: datetime) -> None:
        self.ms = round(start.timestamp() * 1000)

    def __call__(self) -> float:
        return self.ms / 1000


class KafkaEngine:
    name = "kafka"

    def __init__(
        self,
        bootstrap: str,
        namespace: str,
        data_dir: Path,
        start: datetime,
        *modules: ModuleType,
        orchestrators: int = 1,
        documents: bool = False,
    ) -> None:
        """With `documents`, deployed DSL documents are workflows too, and their
        schedules are declared as `replayflow orchestrator` declares them."""
        self.settings = Settings(
            bootstrap=bootstrap, namespace=namespace, partitions=3, data_dir=data_dir
        )
        report = apply_topics(self.settings.bootstrap, load_topics(self.settings))
        assert report.ok, report.summary()
        self.registry = Registry.of(*modules)
        self.documents: DocumentStore | None = None
        if documents:
            self.documents = DocumentStore(KafkaDocumentLog(self.settings)).start()
            self.registry.add_source(self.documents)
        self.clock = VirtualClock(start)
        self.client = Client(self.settings, watch_completions=False)
        self.schedules = _SettlingSchedules(self)
        self.orchestrators: list[tuple[Orchestrator, threading.Thread]] = []
        self.start_orchestrators(orchestrators)

    # -- orchestrators ----------------------------------------------------------------

    def start_orchestrators(self, count: int = 1) -> None:
        """Start `count` orchestrators at once (each declares the code's schedules)."""
        started = []
        for n in range(count):
            orchestrator = Orchestrator(
                self.settings,
                self.registry,
                instance_id=f"sched-orchestrator-{n}",
                data_dir=self.settings.data_dir,
                clock=self.clock,
            )
            ready = threading.Event()
            thread = threading.Thread(target=orchestrator.run, args=(ready,), daemon=True)
            started.append((orchestrator, thread, ready))
        for orchestrator, thread, _ in started:
            if self.documents is not None:
                declare_document_schedules(self.registry, orchestrator)
            thread.start()
            self.orchestrators.append((orchestrator, thread))
        deadline = time.monotonic() + 60
        while not any(ready.is_set() for _, _, ready in started):
            assert time.monotonic() < deadline, "no orchestrator got partitions"
            time.sleep(0.05)
        self.settle()

    def stop_orchestrators(self) -> None:
        for orchestrator, thread in self.orchestrators:
            orchestrator.stop()
            thread.join(30)
        self.orchestrators = []

    def settle(self, quiet: float = 0.4, timeout: float = 60.0) -> None:
        """Wait until no orchestrator has committed a batch for `quiet` seconds: every
        command on the topic is folded and no timer due by the clock is left (either
        would make a batch within one poll, 50 ms)."""
        deadline = time.monotonic() + timeout
        last: tuple[int, ...] = ()
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batches = tuple(o.stats.batches for o, _ in self.orchestrators)
            if batches != last:
                last, quiet_since = batches, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet:
                return
            time.sleep(0.05)
        raise TimeoutError("the orchestrators did not settle")

    def _next_due(self) -> int | None:
        found = []
        for orchestrator, _ in self.orchestrators:
            for folder in list(orchestrator._folders.values()):
                for key, _ in folder.store.scan(keys.TIMERS):
                    found.append(keys.parse_timer(key)[0])
                    break
        return min(found, default=None)

    # -- the interface ---------------------------------------------------------------

    @property
    def now(self) -> int:
        return self.clock.ms

    def advance(self, duration: Duration) -> None:
        until = self.clock.ms + to_ms(duration)
        self.settle()
        while (due := self._next_due()) is not None and due <= until:
            self.clock.ms = max(self.clock.ms, due)
            self.settle()
        self.clock.ms = until
        self.settle()

    def outage(self, duration: Duration) -> None:
        self.settle()
        count = len(self.orchestrators)
        self.stop_orchestrators()
        self.clock.ms += to_ms(duration)
        self.start_orchestrators(count)

    def _history(self) -> list[Any]:
        topic = Topics(self.settings).history
        consumer = clients.consumer(self.settings, None)
        try:
            partitions = topic_partitions(consumer, topic)
            events = []
            for messages in read_to_end(consumer, topic, partitions):
                for message in messages:
                    events.append(codec.decode(message.value() or b""))
            return events
        finally:
            consumer.close()

    def instances(self, workflow: WorkflowDef | str) -> list[str]:
        name = _name(workflow)
        return sorted(
            e.instance_id
            for e in self._history()
            if isinstance(e, WorkflowStarted) and e.workflow == name
        )

    def status(self, instance_id: str) -> str | None:
        found = None
        for event in self.client._scan(Topics(self.settings).history, instance_id):
            if getattr(event, "instance_id", None) != instance_id:
                continue
            if isinstance(event, WorkflowStarted):
                found = "RUNNING"
            found = ENDINGS.get(type(event), found)
        return found

    def send_event(self, instance_id: str, name: str, payload: Any = None) -> None:
        self.client.send_event(instance_id, name, payload)
        self.settle()

    def facts(self, schedule_id: str) -> list[ScheduleEvent]:
        events = self.client._scan(Topics(self.settings).history, schedule_key(schedule_id))
        return [e for e in events if isinstance(e, ScheduleEvent)]

    def close(self) -> None:
        self.stop_orchestrators()
        self.client.close()
        if self.documents is not None:
            self.documents.stop()


class _SettlingSchedules(ClientSchedules):
    """The client's schedule operations on the virtual clock; each returns once the
    orchestrator has folded what it sent, as in the memory engine."""

    def __init__(self, engine: KafkaEngine) -> None:
        client = engine.client
        super().__init__(
            engine.settings,
            lambda r: deliver(client._producer, [r], client.send_timeout),
            client._scan,
            clock=engine.clock,
        )
        self._engine = engine

    def _send(self, command: Any) -> None:
        super()._send(command)
        self._engine.settle()
