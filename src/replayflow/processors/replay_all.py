"""Replaying many instances: every matching history of the history topic through the
given code, in parallel processes, each reported identical or with its first
difference (both sides, and the recorded fact that led to it).

Processes, not threads: a replay is Python code folding Python objects, so threads
would take turns on the GIL and use one core however many there are. Each worker
process builds the registry itself, once (`code` is a picklable factory: module names
and document records, not live objects), and takes instances in chunks, so the
histories cross the process boundary once and the results come back small.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from replayflow import codec
from replayflow.core.definitions import Registry
from replayflow.core.facts import Summary, step
from replayflow.core.messages import HistoryEvent
from replayflow.core.replay import ReplayReport, input_commands, replay
from replayflow.core.state import Status
from replayflow.core.upgrade import check_report
from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.membership import close_consumer
from replayflow.kafka.reading import read_to_end
from replayflow.settings import Settings
from replayflow.topics import Topics

CHUNK = 64  # instances per task handed to a worker process

RegistryFactory = Callable[[], Registry]


@dataclass(frozen=True)
class Selection:
    """Which instances to replay (every condition given must hold)."""

    workflow: str | None = None
    version: str | None = None
    since: int | None = None  # ms: active since (a fact at or after it)
    statuses: frozenset[Status] = frozenset()

    def matches(self, summary: Summary) -> bool:
        if self.workflow is not None and summary.workflow != self.workflow:
            return False
        if self.version is not None and summary.version != self.version:
            return False
        if self.since is not None and summary.last_at < self.since:
            return False
        return not self.statuses or summary.status in self.statuses


@dataclass
class Histories:
    """Whole histories by instance (in seq order), and the instances whose history does
    not start at seq 1 (older facts gone with the topic's retention)."""

    histories: dict[str, list[HistoryEvent]] = field(default_factory=dict)
    summaries: dict[str, Summary] = field(default_factory=dict)
    partial: list[str] = field(default_factory=list)
    events: int = 0


def group(events: Iterable[HistoryEvent], selection: Selection) -> Histories:
    """Group facts by instance and keep the whole histories that match."""
    out = Histories()
    histories: dict[str, list[HistoryEvent]] = {}
    summaries: dict[str, Summary] = {}
    skipped: set[str] = set()
    for event in events:
        out.events += 1
        instance_id = event.instance_id
        if instance_id in skipped:
            continue
        summary = step(summaries.get(instance_id), event)
        if summary.first_seq != 1 or (
            selection.workflow is not None and summary.workflow != selection.workflow
        ):
            # Known at the first fact: no need to keep the others.
            skipped.add(instance_id)
            summaries.pop(instance_id, None)
            histories.pop(instance_id, None)
            if summary.first_seq != 1:
                out.partial.append(instance_id)
            continue
        summaries[instance_id] = summary
        histories.setdefault(instance_id, []).append(event)
    for instance_id, summary in summaries.items():
        if selection.matches(summary):
            out.histories[instance_id] = histories[instance_id]
            out.summaries[instance_id] = summary
    return out


def read_history_topic(settings: Settings) -> Iterator[HistoryEvent]:
    """Every fact of the history topic, partition by partition in offset order (so each
    instance's facts come in seq order)."""
    topic = Topics(settings).history
    consumer = clients.consumer(settings, None)
    try:
        partitions = topic_partitions(consumer, topic)
        for partition in partitions:
            for messages in read_to_end(consumer, topic, [partition], batch=5000):
                for message in messages:
                    try:
                        record = codec.decode(message.value() or b"")
                    except codec.CodecError:
                        continue  # not a fact this version knows: the DLQ's business
                    if hasattr(record, "seq") and hasattr(record, "instance_id"):
                        yield record
    finally:
        close_consumer(consumer)


# -- one instance ------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    instance_id: str
    identical: bool
    events: int
    position: int | None = None  # index of the first difference in the history
    after: str | None = None  # the recorded fact that led to the differing decision
    recorded: str | None = None  # what history holds there
    produced: str | None = None  # what the code gives there
    difference: str | None = None


def outcome(instance_id: str, history: list[HistoryEvent], report: ReplayReport) -> Outcome:
    if report.identical:
        return Outcome(instance_id, True, len(history))
    position = report.position if report.position is not None else 0
    recorded = describe(history[position]) if position < len(history) else "nothing more"
    if position < len(report.events):
        produced = describe(report.events[position])
    else:
        produced = report.difference or "nothing more"
    trigger = next(
        (e for e in reversed(history[: position + 1]) if list(input_commands([e]))), None
    )
    return Outcome(
        instance_id,
        False,
        len(history),
        position=position,
        after=None if trigger is None else describe(trigger),
        recorded=recorded,
        produced=produced,
        difference=report.difference,
    )


def describe(event: Any, width: int = 80) -> str:
    """A fact in one line: its type, seq and the fields that say something."""
    parts = [f"seq={event.seq}"] if hasattr(event, "seq") else []
    for f in fields(event):
        if f.name in ("instance_id", "seq", "at"):
            continue
        value = getattr(event, f.name)
        if value is None or value == "":
            continue
        if hasattr(value, "message") and hasattr(value, "type"):
            value = f"{value.type}: {value.message}"
        text = repr(value)
        if len(text) > width:
            text = text[: width - 3] + "..."
        parts.append(f"{f.name}={text}")
    return f"{type(event).__name__}({', '.join(parts)})"


def replay_one(
    instance_id: str, history: list[HistoryEvent], registry: Registry, to_version: str | None
) -> Outcome:
    """Replay on the registry's code, or check a move to `to_version` (core/upgrade.py)."""
    try:
        report = (
            replay(history, registry)
            if to_version is None
            else check_report(history, registry, to_version)
        )
    except Exception as exc:  # user code may fail in ways replay does not catch
        report = ReplayReport(False, (), None, f"replay failed: {type(exc).__name__}: {exc}", 0)
    return outcome(instance_id, history, report)


# -- many, in processes ------------------------------------------------------------------

_registry: Registry | None = None


def _init_worker(code: RegistryFactory) -> None:
    global _registry
    _registry = code()


def _replay_chunk(
    chunk: list[tuple[str, list[HistoryEvent]]], to_version: str | None
) -> list[Outcome]:
    assert _registry is not None, "the worker was not initialised"
    return [replay_one(i, h, _registry, to_version) for i, h in chunk]


def replay_many(
    histories: dict[str, list[HistoryEvent]],
    code: RegistryFactory,
    *,
    workers: int | None = None,
    to_version: str | None = None,
    on_done: Callable[[list[Outcome]], None] | None = None,
) -> list[Outcome]:
    """Replay every history; outcomes in the order of `histories`. `workers` processes
    (default: the machine's cores); 1 replays in this process."""
    items = list(histories.items())
    count = workers if workers is not None else (os.cpu_count() or 1)
    count = max(1, min(count, (len(items) + CHUNK - 1) // CHUNK))
    chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
    results: dict[str, Outcome] = {}
    if count == 1:
        registry = code()
        for chunk in chunks:
            done = [replay_one(i, h, registry, to_version) for i, h in chunk]
            results.update((o.instance_id, o) for o in done)
            if on_done is not None:
                on_done(done)
    else:
        # spawn: the parent may hold Kafka clients and threads, which fork would copy
        # in a broken state.
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(
            count, mp_context=context, initializer=_init_worker, initargs=(code,)
        ) as pool:
            futures = [pool.submit(_replay_chunk, chunk, to_version) for chunk in chunks]
            for future in concurrent.futures.as_completed(futures):
                done = future.result()
                results.update((o.instance_id, o) for o in done)
                if on_done is not None:
                    on_done(done)
    return [results[instance_id] for instance_id, _ in items]
