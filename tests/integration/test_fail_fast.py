"""Fail fast on the real broker: what no orchestrator runs is refused at the call (CLI
exit 1, client exceptions), commands for unknown instances are answered within
milliseconds by the orchestrator, raw producers still get the dead-letter topic, and a
handle for an instance that ended long ago reads its recorded result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import replayflow as rf
from replayflow import codec
from replayflow.client import Client, CommandRejected, UnknownInstance, UnknownWorkflow
from replayflow.core.definitions import Registry
from replayflow.core.messages import DeadLetter, SendEvent, StartWorkflow
from replayflow.kafka import clients
from replayflow.kafka.producing import Record, deliver
from replayflow.kafka.reading import read_all
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.topics import Topics, apply_topics, load_topics

REPO = Path(__file__).resolve().parents[2]


@rf.workflow(name="ff-echo", version="1")
async def echo(ctx: rf.Context, value: object) -> object:
    return {"echo": value}


@rf.workflow(name="ff-wait", version="1")
async def waiter(ctx: rf.Context, value: object) -> object:
    return await ctx.wait_for_event("go", timeout="1h")


@pytest.fixture
def runtime(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    apply_topics(settings.bootstrap, load_topics(settings))
    config = settings.replace(data_dir=tmp_path)
    with LocalRuntime(config, Registry.of(echo, waiter)):
        yield config


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": settings.bootstrap,
        "REPLAYFLOW_NAMESPACE": settings.namespace,
    }
    return subprocess.run(
        [sys.executable, "-m", "replayflow.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def dead_letters(settings: Settings) -> list[DeadLetter]:
    topic = Topics(settings).dlq
    consumer = clients.consumer(settings, None)
    try:
        found = []
        for message in read_all(consumer, topic, range(settings.partitions or 1)):
            record = codec.decode(message.value())
            if isinstance(record, DeadLetter):
                found.append(record)
        return found
    finally:
        consumer.close()


def test_an_unknown_workflow_is_refused_at_the_call(runtime: Settings) -> None:
    with Client(runtime) as client:
        with pytest.raises(UnknownWorkflow, match="unknown workflow 'nosuch-wf'"):
            client.start("nosuch-wf", {})
        with pytest.raises(UnknownWorkflow, match=r"unknown version '7' .*known: 1"):
            client.start("ff-echo", 1, version="7")
        with pytest.raises(UnknownWorkflow) as batch:
            client.start_many([("ff-echo", 1, "ok-1"), ("nosuch-wf", 2, "bad-1")])
        assert batch.value.index == 1
    started = cli(runtime, "start", "nosuch-wf", "{}")
    assert started.returncode == 1, started.stdout
    assert started.stdout == ""
    assert started.stderr.startswith("Error: UnknownWorkflow: unknown workflow 'nosuch-wf'")
    assert len(started.stderr.splitlines()) == 1
    assert "\x1b[" not in started.stderr  # red only on a terminal
    assert dead_letters(runtime) == []  # refused before anything was sent


def test_the_orchestrator_answers_a_rejected_start_in_milliseconds(runtime: Settings) -> None:
    # Without the check the start is sent: the orchestrator refuses it with a Reply.
    with Client(runtime, check=False, watch_completions=False) as client:
        client.start("ff-echo", 0, id="warm")  # the reply follower is running now
        began = time.monotonic()
        with pytest.raises(UnknownWorkflow, match="unknown workflow 'nosuch-wf'") as caught:
            client.start("nosuch-wf", {}, id="sent-anyway")
        took = time.monotonic() - began
    assert caught.value.kind == "UnknownWorkflow" and caught.value.instance_id == "sent-anyway"
    assert took < 2.0, took
    assert dead_letters(runtime) == []  # the caller was told: no dead letter


def test_commands_for_an_unknown_instance_fail(runtime: Settings) -> None:
    with Client(runtime) as client:
        for call in (
            lambda: client.send_event("nobody", "go", 1),
            lambda: client.cancel("nobody"),
            lambda: client.terminate("nobody"),
            lambda: client.pause("nobody"),
            lambda: client.resume("nobody"),
            lambda: client.restart("nobody"),
        ):
            with pytest.raises(UnknownInstance, match="no instance 'nobody'"):
                call()
        client.start("ff-wait", 0, id="w-1")
        with pytest.raises(CommandRejected, match="no step 'nope'") as caught:
            client.restart("w-1", from_step="nope")
        assert caught.value.kind == "Conflict"
        reply = client.send_event("w-1", "go", "now")
        assert reply is not None and reply.outcome == "ACCEPTED"
        assert client.result("w-1", timeout=60) == "now"
        again = client.cancel("w-1")
        assert again is not None and (again.outcome, again.status) == ("UNCHANGED", "COMPLETED")
    for args in (("send-event", "nobody", "go", "1"), ("cancel", "nobody"), ("pause", "nobody")):
        done = cli(runtime, *args)
        assert done.returncode == 1, done.stdout
        assert done.stderr.strip() == "Error: UnknownInstance: no instance 'nobody'"
    sent = cli(runtime, "cancel", "w-1")
    assert sent.returncode == 0 and sent.stdout.strip() == "cancel: nothing to do, w-1 is COMPLETED"


def test_a_raw_producer_still_gets_the_dead_letter_topic(runtime: Settings) -> None:
    producer = clients.producer(runtime)
    command = StartWorkflow(instance_id="raw-1", workflow="nosuch-wf")
    deliver(producer, [Record(Topics(runtime).commands, codec.encode(command), key=b"raw-1")])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        letters = dead_letters(runtime)
        if letters:
            break
        time.sleep(0.5)
    [letter] = letters
    assert letter.key == b"raw-1" and "unknown workflow 'nosuch-wf'" in letter.reason


def test_a_start_of_a_finished_instance_returns_its_recorded_result(runtime: Settings) -> None:
    with Client(runtime) as client:
        assert client.start("ff-echo", 5, id="done-1").result(timeout=60) == {"echo": 5}
        again = client.start("ff-echo", 6, id="done-1")
        assert (again.outcome, again.status) == ("UNCHANGED", "COMPLETED")
        assert again.result(timeout=10) == {"echo": 5}
    # A client that never saw the instance run reads it back from the log.
    with Client(runtime) as later:
        began = time.monotonic()
        assert later.start("ff-echo", 7, id="done-1").result(timeout=10) == {"echo": 5}
        assert time.monotonic() - began < 10
    again_cli = cli(runtime, "start", "ff-echo", "8", "--id", "done-1", "--wait")
    assert again_cli.returncode == 0, again_cli.stderr
    assert again_cli.stdout.splitlines()[0] == "done-1"
    assert json.loads("".join(again_cli.stdout.splitlines()[1:])) == {"echo": 5}
    assert "exists already (COMPLETED)" in again_cli.stderr


def test_a_restarted_instance_reads_its_next_result(runtime: Settings) -> None:
    with Client(runtime) as client:
        client.start("ff-wait", 0, id="rs-1")
        client.send_event("rs-1", "go", "first")
        assert client.result("rs-1", timeout=60) == "first"
        handle = client.restart("rs-1")
        assert handle.outcome == "ACCEPTED"
        client.send_event("rs-1", "go", "second")
        assert handle.result(timeout=60) == "second"


def test_dlq_lists_entries_and_redrives_only_what_can_succeed(runtime: Settings) -> None:
    producer = clients.producer(runtime)
    commands = Topics(runtime).commands
    junk = Record(commands, b"not avro at all", key=b"junk-1")
    event = SendEvent(instance_id="later-1", name="go", payload="1")
    deliver(producer, [junk, Record(commands, codec.encode(event), key=b"later-1")])
    deadline = time.monotonic() + 60
    while len(dead_letters(runtime)) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    listed = cli(runtime, "dlq", "--json")
    assert listed.returncode == 0, listed.stderr
    entries = {e["key"]: e for e in map(json.loads, listed.stdout.splitlines())}
    assert entries["later-1"]["original"] == {
        "type": "SendEvent",
        "instance_id": "later-1",
        "name": "go",
        "payload": 1,
    }
    table = cli(runtime, "dlq")
    assert table.stdout.splitlines()[0].split() == ["ID", "TIME", "KEY", "TYPE", "REASON"]
    assert entries["junk-1"]["id"] in table.stdout and " UTC " in table.stdout
    refused = cli(runtime, "dlq", "redrive", entries["junk-1"]["id"])
    assert refused.returncode == 1
    assert "cannot succeed if redriven: its bytes are not a replayflow record" in refused.stderr
    # The instance exists now: the event can be delivered.
    with Client(runtime) as client:
        client.start("ff-wait", 0, id="later-1")
    redriven = cli(runtime, "dlq", "redrive", entries["later-1"]["id"])
    assert redriven.returncode == 0, redriven.stderr
    assert redriven.stdout.startswith(f"{entries['later-1']['id']} redriven to ")
    with Client(runtime) as client:
        assert client.result("later-1", timeout=60) == 1
    again = cli(runtime, "dlq", "redrive", entries["later-1"]["id"])
    assert again.returncode == 1 and "was redriven already (at 20" in again.stderr


def test_history_shows_times_as_dates(runtime: Settings) -> None:
    with Client(runtime) as client:
        client.start("ff-wait", 0, id="dates-1")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown = cli(runtime, "history", "dates-1")
        if "EventAwaited" in shown.stdout:
            break
        time.sleep(0.5)
    line = next(x for x in shown.stdout.splitlines() if "EventAwaited" in x)
    assert "deadline=20" in line and " UTC" in line  # not epoch milliseconds
