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
from replayflow.core.errors import CommandRejected, ReplayflowError
from replayflow.kafka import clients
from replayflow.kafka.outage import KafkaUnreachable
from replayflow.settings import Settings, SettingsError

F = TypeVar("F", bound=Callable[..., Any])


#: Exit status when Kafka cannot be reached (1 is every other failure).
EXIT_UNREACHABLE = 2


class CliError(click.ClickException, ReplayflowError):
    """A failure the user can act on: one line on stderr ("Error: ..."), red when stderr
    is a terminal (click leaves colours out of pipes and files)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        show_error(self.format_message())


def show_error(message: str) -> None:
    click.secho(f"Error: {message}", fg="red", err=True)


def settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise CliError(str(exc)) from None


def kafka_settings() -> Settings:
    """Settings, once a broker has answered: a command fails within the connect timeout
    (REPLAYFLOW_CONNECT_TIMEOUT, 5 s) with one line and exit 2 when none does."""
    config = settings()
    clients.check_reachable(config)
    return config


def one_line_errors(func: F) -> F:
    """Failures the user can act on print as one line and exit 1 (2 when Kafka cannot
    be reached), not a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise  # said in its own words already
        except KafkaUnreachable as exc:
            raise CliError(str(exc), EXIT_UNREACHABLE) from None
        except CommandRejected as exc:
            raise CliError(f"{exc.kind}: {exc}") from None
        except (
            ReplayflowError,
            KafkaException,
            TimeoutError,
            ValueError,
            LookupError,
            ImportError,
        ) as exc:
            raise CliError(f"{type(exc).__name__}: {exc}") from None

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
            raise CliError(f"cannot import module {name!r}: {exc}") from None
        registry.add(module)
    if modules and not registry.workflows and not registry.steps:
        raise CliError(f"no @rf.workflow or @rf.step found in {', '.join(modules)}")
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
        raise CliError(f"{what} is not JSON: {exc}") from None


modules_option = click.option(
    "-m",
    "--module",
    "modules",
    multiple=True,
    metavar="MODULE",
    help="Python module with @rf.workflow / @rf.step definitions (repeatable).",
)
