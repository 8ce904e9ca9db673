"""Triggers in threads of one process (`replayflow trigger`, `replayflow dev`).

    runner = TriggerRunner(settings, member_id="trigger-a")
    runner.reconcile(specs)      # start new triggers, restart changed ones, stop removed
    ...
    runner.stop()

Each trigger runs one TriggerProcessor in its own thread. A processor that fails is
started again after a pause (a broker that went away, a topic not created yet); one
that was fenced (another process runs with the same member id) is not: two processes
with one id would fence each other for ever, so the error is logged and kept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException

from replayflow.processors.trigger import TriggerProcessor, TriggerStats
from replayflow.processors.trigger_source import TriggerSpec
from replayflow.settings import Settings

log = logging.getLogger("replayflow.trigger")


def _fatal(exc: BaseException) -> bool:
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return isinstance(error, KafkaError) and error.fatal()


class _Running:
    def __init__(self, runner: TriggerRunner, spec: TriggerSpec) -> None:
        self.runner = runner
        self.spec = spec
        self.stopping = threading.Event()
        self.ready = threading.Event()
        self.processor: TriggerProcessor | None = None
        self.stats = TriggerStats()
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run, name=f"replayflow-trigger-{spec.name}", daemon=True
        )

    def _run(self) -> None:
        runner = self.runner
        while not self.stopping.is_set():
            processor = TriggerProcessor(
                runner.settings,
                self.spec,
                member_id=runner.member_id,
                batch_size=runner.batch_size,
            )
            processor.stats = self.stats  # one tally across restarts
            self.processor = processor
            if self.stopping.is_set():
                break
            try:
                processor.run(self.ready)
                return
            except BaseException as exc:
                self.error = exc
                if _fatal(exc):
                    log.error("trigger %s stopped: %s", self.spec.name, exc)
                    return
                log.exception("trigger %s failed; starting it again", self.spec.name)
                self.stopping.wait(runner.restart_delay)

    def stop(self) -> None:
        self.stopping.set()
        if self.processor is not None:
            self.processor.stop()


class TriggerRunner:
    def __init__(
        self,
        settings: Settings,
        member_id: str,
        *,
        batch_size: int = 2000,
        restart_delay: float = 2.0,
    ) -> None:
        self.settings = settings
        self.member_id = member_id
        self.batch_size = batch_size
        self.restart_delay = restart_delay
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()

    def reconcile(self, specs: Iterable[TriggerSpec]) -> list[str]:
        """Run exactly `specs`: start the new ones, restart those whose digest changed,
        stop the ones no longer given. Returns the names started or restarted."""
        wanted: dict[str, TriggerSpec] = {}
        for spec in specs:
            if spec.name in wanted and wanted[spec.name].digest != spec.digest:
                raise ValueError(f"two different triggers are named {spec.name!r}")
            wanted[spec.name] = spec
        started = []
        with self._lock:
            for name in list(self._running):
                known = self._running[name]
                if name not in wanted or wanted[name].digest != known.spec.digest:
                    self._halt(self._running.pop(name))
            for name, spec in wanted.items():
                if name not in self._running:
                    running = _Running(self, spec)
                    self._running[name] = running
                    running.thread.start()
                    started.append(name)
                    log.info("trigger %s: %s", name, spec.description)
        return started

    @staticmethod
    def _halt(running: _Running) -> None:
        running.stop()
        running.thread.join(30)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._running)

    def stats(self) -> dict[str, TriggerStats]:
        with self._lock:
            return {name: r.stats for name, r in self._running.items()}

    def lag(self) -> dict[str, int]:
        """Records behind the end of the source topic, per trigger (last sample)."""
        with self._lock:
            running = list(self._running.items())
        return {
            name: r.processor.telemetry.total_lag() if r.processor is not None else 0
            for name, r in running
        }

    def errors(self) -> dict[str, BaseException]:
        with self._lock:
            return {n: r.error for n, r in self._running.items() if r.error is not None}

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """Wait until every trigger has partitions assigned (False after `timeout` s)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            running = list(self._running.values())
        return all(r.ready.wait(max(0.0, deadline - time.monotonic())) for r in running)

    def stop(self) -> None:
        with self._lock:
            running = list(self._running.values())
            self._running.clear()
        for r in running:
            r.stop()
        for r in running:
            r.thread.join(30)

    def __enter__(self) -> TriggerRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
