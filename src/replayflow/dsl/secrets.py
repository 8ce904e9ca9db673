"""Secrets named in `use.secrets`, read from dedicated environment variables or files.

A secret `db-password` is the environment variable `REPLAYFLOW_SECRET_DB_PASSWORD`
(the name upper-cased, every character other than a letter or digit made `_`), else
the file `db-password` in the directory `$REPLAYFLOW_SECRETS_DIR` (only when that
variable is set; a name with `/` or `\\`, or starting with `.`, is never a file). Other
environment variables and paths are out of reach. A secret that is not there is an
`authorization` fault (status 403).

Secrets are read where the workflow code runs (the orchestrator), once per process
and document version. A secret's value used in an expression takes part in what the
workflow computes: what it lands in (a step's input, a task output, an error message)
is recorded in history, and the value is read again when the instance is replayed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from replayflow.dsl.errors import WorkflowFault, fault

PREFIX = "REPLAYFLOW_SECRET_"
DIR_VARIABLE = "REPLAYFLOW_SECRETS_DIR"


def variable_name(name: str) -> str:
    """The environment variable that holds secret `name`: api_key -> REPLAYFLOW_SECRET_API_KEY."""
    return PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _file_name_ok(name: str) -> bool:
    return bool(name) and not name.startswith(".") and not re.search(r"[/\\\x00]", name)


class Secrets:
    def __init__(
        self, environ: Mapping[str, str] | None = None, folder: str | Path | None = None
    ) -> None:
        self._environ = environ
        self._folder = folder
        self._cache: dict[str, Any] = {}

    def _lookup(self, name: str) -> Any:
        env = os.environ if self._environ is None else self._environ
        variable = variable_name(name)
        if variable in env:
            return env[variable]
        folder = self._folder or env.get(DIR_VARIABLE)
        if folder and _file_name_ok(name):
            try:
                return (Path(folder) / name).read_text(encoding="utf-8").rstrip("\n")
            except OSError:
                pass
        return None

    def get(self, name: str, where: str = "/use/secrets") -> Any:
        """The value of secret `name`; an authorization fault when there is none."""
        if name not in self._cache:
            value = self._lookup(name)
            if value is None:
                raise _missing(name, where)
            self._cache[name] = value
        return self._cache[name]

    def resolve(self, names: list[str], where: str = "/use/secrets") -> dict[str, Any]:
        return {name: self.get(name, where) for name in names if isinstance(name, str)}


def _missing(name: str, where: str) -> WorkflowFault:
    place = f"the environment variable {variable_name(name)}"
    if _file_name_ok(name):
        place += f" or the file {name!r} in ${DIR_VARIABLE}"
    return fault(
        "authorization",
        f"secret {name!r} is not available: set {place}",
        where,
        title="Secret not available",
    )
