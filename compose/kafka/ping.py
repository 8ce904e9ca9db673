#!/usr/bin/env python3
"""Does a Kafka broker answer a metadata request?

    python ping.py HOST:PORT [--timeout SECONDS]

Exit 0 when the cluster answered and lists at least one broker, 1 otherwise (one line
on stderr says why). Used by kafka.sh to wait for the local broker; it asks with
confluent-kafka, so kafka.sh runs it with the project's .venv python. Before .venv
exists (confluent-kafka not importable), it can only tell that the port accepts
connections, and says so on stderr.
"""

from __future__ import annotations

import logging
import socket
import sys


def brokers(bootstrap: str, timeout: float) -> list[str]:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    quiet = logging.getLogger("replayflow.ping")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    admin = AdminClient(
        {
            "bootstrap.servers": bootstrap,
            "logger": quiet,
            "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000)),
        }
    )
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise OSError(exc.args[0].str() if exc.args else str(exc)) from None
    return [f"{b.id}@{b.host}:{b.port}" for b in metadata.brokers.values()]


def port_open(bootstrap: str, timeout: float) -> list[str]:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
        pass
    return [f"?@{host}:{port}"]


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    timeout = 2.0
    if len(argv) >= 3 and argv[1] == "--timeout":
        timeout = float(argv[2])
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        check = port_open
        print(
            f"confluent-kafka is not installed for {sys.executable} (`make venv`): "
            "only checking that the port accepts connections",
            file=sys.stderr,
        )
    else:
        check = brokers
    try:
        found = check(argv[0], timeout)
    except (OSError, ValueError) as exc:
        print(f"no answer from {argv[0]}: {exc}", file=sys.stderr)
        return 1
    if not found:
        print(f"{argv[0]} answered but lists no broker yet", file=sys.stderr)
        return 1
    print("brokers: " + ", ".join(found))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
