"""Process settings, read from the environment once (`Settings.from_env()`).

| variable                          | field                | default          |
|-----------------------------------|----------------------|------------------|
| KAFKA_BOOTSTRAP                   | bootstrap            | 127.0.0.1:9092   |
| REPLAYFLOW_NAMESPACE              | namespace            | "" (none)        |
| REPLAYFLOW_PARTITIONS             | partitions           | as topics.yaml   |
| REPLAYFLOW_REPLICATION            | replication          | as topics.yaml   |
| REPLAYFLOW_DATA                   | data_dir             | .data            |
| REPLAYFLOW_HISTORY_RETENTION_MS   | history_retention_ms | as topics.yaml   |
| REPLAYFLOW_CONNECT_TIMEOUT        | connect_timeout      | 5 (seconds)      |
| REPLAYFLOW_ADMISSION              | admission            | sharded          |
| REPLAYFLOW_TASK_COMMIT_MS         | task_commit_ms       | 50               |

A namespace gives an isolated set of topics on a shared cluster (tests use one per
test): topic `replayflow.commands` becomes `<namespace>.replayflow.commands`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replayflow.core.errors import ReplayflowError

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"

# Kafka topic names: [a-zA-Z0-9._-], at most 249 characters.
_NAMESPACE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
MAX_NAMESPACE_LENGTH = 100
ADMISSION_MODES = ("sharded", "global")
DEFAULT_TASK_COMMIT_MS = 50


class SettingsError(ReplayflowError, ValueError):
    """A setting has a value replayflow cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    bootstrap: str = DEFAULT_BOOTSTRAP
    namespace: str = ""
    # None = as declared in topics.yaml. `partitions` replaces the shared partition
    # count of the instance-keyed topics; topics that declare their own count (such
    # as the one-partition replayflow.workflows) keep it.
    partitions: int | None = None
    replication: int | None = None
    data_dir: Path = Path(".data")
    # None = as declared; -1 = keep history forever.
    history_retention_ms: int | None = None
    # Seconds a command waits for Kafka to answer before it says it cannot reach it.
    connect_timeout: float = 5.0
    # How the orchestrator admits instances of a workflow with a concurrency limit:
    # "sharded" splits the limit over the partitions (each admits its own instances,
    # first in, first out per partition); "global" keeps one limiter, first in, first
    # out across all partitions, at the cost of two more transactions per admission
    # and one hot partition (processors/admission.py). Every orchestrator of a
    # deployment must use the same; change it only while no limited instance runs or
    # waits.
    admission: str = "sharded"
    # Least time between two commits of a worker's task offsets (processors/
    # task_commits.py). Each commit is a write to __consumer_offsets that the worker
    # waits for; a step whose result reached the log less than this before the worker
    # died runs again. 0 commits in every turn that has a result; at most a minute (a
    # longer interval only makes a crashed worker's successor repeat more steps).
    task_commit_ms: int = DEFAULT_TASK_COMMIT_MS

    def __post_init__(self) -> None:
        if not self.bootstrap.strip():
            raise SettingsError("KAFKA_BOOTSTRAP is empty; give host:port[,host:port...]")
        if self.namespace and (
            not _NAMESPACE.match(self.namespace)
            or self.namespace.endswith(".")
            or len(self.namespace) > MAX_NAMESPACE_LENGTH
        ):
            raise SettingsError(
                f"REPLAYFLOW_NAMESPACE {self.namespace!r} is not usable in Kafka topic names: "
                f"use letters, digits, '.', '_', '-' (not ending in '.'), "
                f"at most {MAX_NAMESPACE_LENGTH} characters"
            )
        for label, value in (
            ("REPLAYFLOW_PARTITIONS", self.partitions),
            ("REPLAYFLOW_REPLICATION", self.replication),
        ):
            if value is not None and value < 1:
                raise SettingsError(f"{label} must be a positive integer, not {value}")
        if self.admission not in ADMISSION_MODES:
            raise SettingsError(
                f"REPLAYFLOW_ADMISSION must be one of {', '.join(ADMISSION_MODES)}, "
                f"not {self.admission!r}"
            )
        if self.history_retention_ms is not None and (
            self.history_retention_ms < 1 and self.history_retention_ms != -1
        ):
            raise SettingsError(
                "REPLAYFLOW_HISTORY_RETENTION_MS must be a positive number of milliseconds "
                f"or -1 (forever), not {self.history_retention_ms}"
            )
        if not self.connect_timeout > 0:
            raise SettingsError(
                f"REPLAYFLOW_CONNECT_TIMEOUT must be a positive number of seconds, "
                f"not {self.connect_timeout}"
            )
        if isinstance(self.task_commit_ms, bool) or not (
            isinstance(self.task_commit_ms, int) and 0 <= self.task_commit_ms <= 60_000
        ):
            raise SettingsError(
                "REPLAYFLOW_TASK_COMMIT_MS must be a whole number of milliseconds from 0 to "
                f"60000, not {self.task_commit_ms!r}"
            )
        if not isinstance(self.data_dir, Path):
            object.__setattr__(self, "data_dir", Path(self.data_dir))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `environ` (default: os.environ); keyword overrides win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "bootstrap": env.get("KAFKA_BOOTSTRAP", "").strip() or DEFAULT_BOOTSTRAP,
            "namespace": env.get("REPLAYFLOW_NAMESPACE", "").strip(),
            "partitions": _int(env, "REPLAYFLOW_PARTITIONS"),
            "replication": _int(env, "REPLAYFLOW_REPLICATION"),
            "data_dir": Path(env.get("REPLAYFLOW_DATA", "").strip() or ".data"),
            "history_retention_ms": _int(env, "REPLAYFLOW_HISTORY_RETENTION_MS"),
        }
        admission = env.get("REPLAYFLOW_ADMISSION", "").strip()
        if admission:
            values["admission"] = admission
        task_commit_ms = _int(env, "REPLAYFLOW_TASK_COMMIT_MS")
        if task_commit_ms is not None:
            values["task_commit_ms"] = task_commit_ms
        connect_timeout = _float(env, "REPLAYFLOW_CONNECT_TIMEOUT")
        if connect_timeout is not None:
            values["connect_timeout"] = connect_timeout
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated like a new one)."""
        return dataclasses.replace(self, **changes)

    def topic_name(self, name: str) -> str:
        """The real Kafka topic name of a declared topic name, namespace applied."""
        return f"{self.namespace}.{name}" if self.namespace else name


def _int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, not {raw!r}") from None


def _float(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
