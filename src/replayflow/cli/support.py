"""What the CLI commands share: settings, loading user modules, one-line errors."""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from confluent_kafka import KafkaException

from replayflow.core.definitions import Registry
from replayflow.core.errors import ReplayflowError
from replayflow.settings import Settings, SettingsError

F = TypeVar("F", bound=Callable[..., Any])


def settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def one_line_errors(func: F) -> F:
    """Failures the user can act on print as one line and exit 1, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (
            ReplayflowError,
            KafkaException,
            TimeoutError,
            ValueError,
            LookupError,
            ImportError,
        ) as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None

    return wrapper  # type: ignore[return-value]


def load_registry(modules: tuple[str, ...]) -> Registry:
    """Import the user's modules (from the working directory too) and collect their
    workflows and steps."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    registry = Registry()
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise click.ClickException(f"cannot import module {name!r}: {exc}") from None
        registry.add(module)
    if modules and not registry.workflows and not registry.steps:
        raise click.ClickException(f"no @rf.workflow or @rf.step found in {', '.join(modules)}")
    return registry


def parse_json(text: str | None, what: str) -> Any:
    if text is None:
        return None
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as handle:
            text = handle.read()
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.ClickException(f"{what} is not JSON: {exc}") from None


modules_option = click.option(
    "-m",
    "--module",
    "modules",
    multiple=True,
    metavar="MODULE",
    help="Python module with @rf.workflow / @rf.step definitions (repeatable).",
)
