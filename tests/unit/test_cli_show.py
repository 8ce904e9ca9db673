"""What the CLI shows a person: dates and durations in words, what an instance waits
for, tables that hold long ids, and errors in red only on a terminal."""

from __future__ import annotations

from click.testing import CliRunner

from replayflow.cli import main, show

T = 1_767_225_600_000  # 2026-01-01 00:00:00 UTC


def test_times_and_durations_read_as_words() -> None:
    assert show.when(T) == "2026-01-01 00:00:00 UTC"
    assert show.when(T + 300_000, relative=True, now=T / 1000) == (
        "2026-01-01 00:05:00 UTC (in 5 min)"
    )
    assert show.when(T - 3_000, relative=True, now=T / 1000).endswith("(3.0 s ago)")
    assert [show.duration(ms) for ms in (5, 4_200, 65_000, 7_500_000, 90_000_000)] == [
        "5 ms",
        "4.2 s",
        "1 min 5 s",
        "2 h 5 min",
        "1 d 1 h",
    ]
    assert show.field("due", T) == "2026-01-01 00:00:00 UTC"
    assert show.field("timeout_ms", 600_000) == "10 min"
    assert show.field("step", "charge") == "charge"


def test_what_an_instance_does_now() -> None:
    running = {"status": "RUNNING", "waiting_count": 3}
    sleep = {"kind": "sleep", "key": "cool-off", "until": T}
    assert show.waiting({**running, "waiting": [sleep]}).startswith(
        "sleeping (cool-off) until 2026-01-01 00:00:00 UTC ("
    )
    assert show.waiting({**running, "waiting": [sleep]}).endswith("(+2 more)")
    retry = {
        "kind": "step",
        "key": "charge",
        "status": "backoff",
        "until": T,
        "attempt": 2,
        "max_attempts": 5,
        "error": {"type": "ConnectionError", "message": "down"},
    }
    assert "retrying step charge at 2026-01-01 00:00:00 UTC" in show.describe(retry)
    assert show.describe(retry).endswith("(attempt 2 of 5, last error ConnectionError: down)")
    wait = {"kind": "wait", "key": "approval", "until": None}
    assert show.describe(wait) == "waiting for event approval"
    assert show.waiting({"status": "QUEUED", "queue_position": 4}) == "queued at position 4"
    assert show.waiting({"status": "COMPLETED", "waiting": []}) == "COMPLETED"


def test_a_long_id_keeps_the_columns_aligned() -> None:
    long_id = "order-" + "x" * 150
    lines = show.table(("ID", "STATUS"), [(long_id, "RUNNING"), ("a", "FAILED")])
    # Not a terminal: nothing is cut, the column is as wide as the longest id.
    assert lines[1].startswith(long_id + "  RUNNING")
    assert lines[2].index("FAILED") == lines[1].index("RUNNING") == lines[0].index("STATUS")


def test_errors_are_red_only_on_a_terminal() -> None:
    runner = CliRunner()
    plain = runner.invoke(main, ["start", "x", "{not json"], env={"KAFKA_BOOTSTRAP": "h:1"})
    assert plain.exit_code == 1
    assert plain.output.startswith("Error: INPUT is not JSON") and "\x1b[" not in plain.output
    colored = runner.invoke(
        main, ["start", "x", "{not json"], env={"KAFKA_BOOTSTRAP": "h:1"}, color=True
    )
    assert colored.exit_code == 1
    assert colored.output.startswith("\x1b[31mError: INPUT is not JSON")
