"""Recorded histories as regression fixtures: files written by `replayflow history ID
--json`, found and read here, replayed by rf.testing.replay_files / assert_replays.

    replayflow history order-1 --json -o tests/histories/order-1.json

    @pytest.mark.parametrize("path", rf.testing.history_files("tests/histories"))
    def test_recorded_histories_replay(path):
        rf.testing.assert_replays(path, my_workflows)
"""

from __future__ import annotations

from pathlib import Path

from replayflow.core.errors import ValidationError
from replayflow.core.history_files import loads as load_history_text
from replayflow.core.messages import HistoryEvent


def history_files(folder: str | Path) -> list[Path]:
    """The history files (*.json) of a folder, in name order."""
    found = sorted(Path(folder).glob("*.json"))
    if not found:
        raise ValidationError(f"no history files (*.json) in {str(folder)!r}")
    return found


def load_history(path: str | Path) -> list[HistoryEvent]:
    """A history written by `replayflow history ID --json`."""
    return load_history_text(Path(path).read_text(encoding="utf-8"))
