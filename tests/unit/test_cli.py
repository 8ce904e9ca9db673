"""The command line as a package: every command group is registered on `replayflow`, the
console script and `python -m replayflow.cli` reach the same group, and the version
it prints is the one pyproject.toml declares."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

from click.testing import CliRunner

import replayflow
from replayflow.cli import main

REPO = Path(__file__).resolve().parents[2]

COMMANDS = {
    "topics",
    "dev",
    "orchestrator",
    "worker",
    "trigger",
    "health",
    "start",
    "result",
    "send-event",
    "cancel",
    "terminate",
    "pause",
    "resume",
    "restart",
    "history",
    "replay",
    "rebuild",
    "upgrade",
    "dlq",
    "validate",
    "deploy",
    "serve",
    "status",
    "list",
    "stream",
    "schedule",
}


def _declared_version() -> str:
    with open(REPO / "pyproject.toml", "rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def test_every_command_group_is_registered() -> None:
    assert set(main.commands) == COMMANDS


def test_the_console_script_is_the_package_main() -> None:
    [script] = [e for e in entry_points(group="console_scripts") if e.name == "replayflow"]
    assert script.value == "replayflow.cli:main"
    assert script.load() is main


def test_the_version_is_declared_once_and_read_everywhere() -> None:
    declared = _declared_version()
    assert replayflow.__version__ == declared
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"replayflow, version {declared}"


def test_python_dash_m_runs_the_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "replayflow.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "Usage: python -m replayflow.cli" in out.stdout
    for command in ("orchestrator", "dlq", "validate", "serve"):
        assert command in out.stdout


def test_trigger_without_any_trigger_says_how_to_declare_one() -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["trigger", "--no-documents"])
    assert result.exit_code != 0
    assert "no triggers" in result.output
