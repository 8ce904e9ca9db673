"""Secrets named in `use.secrets`, read from the environment or from files.

A secret `db-password` is, in order: the environment variable `db-password` (if the
name is a valid one), `REPLAYFLOW_SECRET_DB_PASSWORD`, or the file
`$REPLAYFLOW_SECRETS_DIR/db-password` (default /run/secrets). Secrets are read where
the workflow code runs (the orchestrator) and are never written to history by the
engine itself; a value you pass to a step's input is recorded like any input.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class Secrets:
    def __init__(
        self, environ: Mapping[str, str] | None = None, folder: str | Path | None = None
    ) -> None:
        self._environ = environ
        self._folder = folder
        self._cache: dict[str, Any] = {}

    def _lookup(self, name: str) -> Any:
        env = os.environ if self._environ is None else self._environ
        if name in env:
            return env[name]
        upper = "REPLAYFLOW_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
        if upper in env:
            return env[upper]
        folder = Path(self._folder or env.get("REPLAYFLOW_SECRETS_DIR", "/run/secrets"))
        try:
            return (folder / name).read_text(encoding="utf-8").rstrip("\n")
        except OSError:
            return None

    def resolve(self, names: list[str]) -> dict[str, Any]:
        out = {}
        for name in names:
            if isinstance(name, str):
                if name not in self._cache:
                    self._cache[name] = self._lookup(name)
                out[name] = self._cache[name]
        return out
