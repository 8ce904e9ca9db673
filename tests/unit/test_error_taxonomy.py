"""One error root: every public exception class replayflow defines derives from
ReplayflowError, so `except rf.ReplayflowError` catches whatever the library raises."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import replayflow
from replayflow.core.errors import ReplayflowError


def _modules() -> list[str]:
    names = [replayflow.__name__]
    for info in pkgutil.walk_packages(replayflow.__path__, prefix="replayflow."):
        if not info.name.endswith(".__main__"):  # importing one runs the program
            names.append(info.name)
    return names


def _public_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and not attr.startswith("_")
            ):
                found[f"{name}.{attr}"] = value
    return found


def test_the_walk_finds_the_exceptions_of_every_layer() -> None:
    # Guards the test below against passing on an empty or partial walk.
    found = set(_public_exceptions())
    assert {
        "replayflow.core.errors.ReplayflowError",
        "replayflow.codec.CodecError",
        "replayflow.topics.TopicsError",
        "replayflow.settings.SettingsError",
        "replayflow.api.errors.ApiError",
        "replayflow.api.dlq.DeadLetterError",
        "replayflow.dsl.loader.LoadError",
        "replayflow.client.ResultTimeout",
    } <= found


def test_every_public_exception_derives_from_replayflow_error() -> None:
    outside = sorted(
        name for name, cls in _public_exceptions().items() if not issubclass(cls, ReplayflowError)
    )
    assert outside == [], f"not under ReplayflowError: {outside}"
