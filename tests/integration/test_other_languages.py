"""Other languages start workflows and read completions from the wire contract alone:
the Node.js example (avsc, kafkajs, kafkajs-lz4; `npm ci` here, from the npm registry)
and the kcat script, against the local broker. Also the claim schemas/README.md makes
about kcat's default partitioner: a start it places is dead-lettered (WrongPartition)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import replayflow as rf
from replayflow import codec
from replayflow.core.definitions import Registry
from replayflow.core.messages import DeadLetter, StartWorkflow
from replayflow.kafka import clients
from replayflow.kafka.partition import murmur2_partition
from replayflow.kafka.reading import read_all
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.topics import Topics, apply_topics, load_topics

REPO = Path(__file__).resolve().parents[2]
NODE = REPO / "examples" / "node"
KCAT_SCRIPT = REPO / "examples" / "kcat" / "replayflow.sh"


@rf.workflow(name="ol-echo", version="1")
async def echo(ctx: rf.Context, value: object) -> object:
    return {"echo": value}


@pytest.fixture(scope="module")
def node_modules() -> Path:
    assert shutil.which("npm") and shutil.which("node"), "node and npm are needed"
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=NODE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return NODE / "node_modules"


@pytest.fixture
def runtime(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    apply_topics(settings.bootstrap, load_topics(settings))
    config = settings.replace(data_dir=tmp_path)
    with LocalRuntime(config, Registry.of(echo)):
        yield config


def env_of(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP": settings.bootstrap,
        "REPLAYFLOW_NAMESPACE": settings.namespace,
    }


def run(settings: Settings, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=cwd, env=env_of(settings), capture_output=True, text=True, timeout=180
    )


def test_a_node_client_starts_a_workflow_and_reads_its_completion(
    node_modules: Path, runtime: Settings
) -> None:
    started = run(runtime, "node", "start.js", "ol-echo", '{"n": 1}', "--id", "node-1", cwd=NODE)
    assert started.returncode == 0, started.stderr
    assert started.stdout.splitlines() == ["node-1", '{"echo":{"n":1}}']
    # The id again: the recorded result, read back from the completions topic.
    again = run(runtime, "node", "start.js", "ol-echo", '{"n": 2}', "--id", "node-1", cwd=NODE)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == ["node-1", '{"echo":{"n":1}}']
    assert "node-1 exists already (COMPLETED)" in again.stderr
    refused = run(runtime, "node", "start.js", "nosuch-wf", "{}", cwd=NODE)
    assert refused.returncode == 1
    assert "refused (UnknownWorkflow): unknown workflow 'nosuch-wf'" in refused.stderr
    with rf.Client(runtime) as client:
        assert client.result("node-1", timeout=10) == {"echo": {"n": 1}}


def test_kcat_starts_a_workflow_and_reads_its_completion(runtime: Settings) -> None:
    assert shutil.which("kcat"), "kcat is needed: `make kcat` installs it"
    started = run(runtime, "bash", str(KCAT_SCRIPT), "start", "ol-echo", "kcat-1", '{"n": 2}')
    assert started.returncode == 0, started.stderr
    # ol-echo has no step: it completes in the very decision that starts it.
    assert started.stdout.strip() == "kcat-1 ACCEPTED COMPLETED"
    result = run(runtime, "bash", str(KCAT_SCRIPT), "result", "kcat-1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '{"echo":{"n":2}}'
    refused = run(runtime, "bash", str(KCAT_SCRIPT), "start", "nosuch-wf", "kcat-2")
    assert refused.returncode == 1
    assert "refused (UnknownWorkflow): unknown workflow 'nosuch-wf'" in refused.stderr


def test_the_kcat_script_writes_the_schemas_it_says() -> None:
    text = KCAT_SCRIPT.read_text()
    for name, variable in (
        ("StartWorkflow", "FP_START_WORKFLOW_V1"),
        ("Completion", "FP_COMPLETION_V1"),
        ("Reply", "FP_REPLY_V1"),
    ):
        match = re.search(rf'{variable}="([0-9a-f ]+)"', text)
        assert match and match.group(1) == codec.fingerprint_of(name, 1).hex(" "), name


def test_kcats_default_partitioner_gets_a_start_dead_lettered(runtime: Settings) -> None:
    # librdkafka's default partitioner hashes with CRC-32, not murmur2: pick an id that
    # lands elsewhere, as most do.
    count = runtime.partitions or 1
    instance_id = next(
        f"crc-{i}"
        for i in range(1000)
        if zlib.crc32(f"crc-{i}".encode()) % count != murmur2_partition(f"crc-{i}".encode(), count)
    )
    value = codec.encode(StartWorkflow(instance_id=instance_id, workflow="ol-echo"))
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"{instance_id}-{runtime.namespace}.avro"
    path.write_bytes(value)
    try:
        sent = run(
            runtime,
            "kcat",
            "-b",
            runtime.bootstrap,
            "-P",
            "-t",
            Topics(runtime).commands,
            "-k",
            instance_id,
            str(path),
        )
    finally:
        path.unlink()
    assert sent.returncode == 0  # kcat says nothing went wrong
    deadline = time.monotonic() + 60
    letters: list[DeadLetter] = []
    while not letters and time.monotonic() < deadline:
        consumer = clients.consumer(runtime, None)
        try:
            letters = [
                record
                for m in read_all(consumer, Topics(runtime).dlq, range(count))
                if isinstance(record := codec.decode(m.value()), DeadLetter)
            ]
        finally:
            consumer.close()
        time.sleep(0.5)
    [letter] = letters
    assert letter.error_type == "WrongPartition" and "murmur2" in letter.reason
