#!/usr/bin/env python3
"""Does a Kafka broker answer a Metadata request?  (stdlib only)

    python3 ping.py HOST:PORT [--timeout SECONDS]

Exit 0 when the broker answered with at least one registered broker, 1 otherwise
(one line on stderr says why). Used by kafka.sh to wait for the local broker
without needing the project's virtualenv.
"""

from __future__ import annotations

import socket
import struct
import sys

METADATA = 3
VERSION = 4  # non-flexible; supported by every Kafka 1.0 .. 4.x broker
CLIENT_ID = b"replayflow-ping"


def _request(correlation_id: int) -> bytes:
    header = struct.pack(">hhih", METADATA, VERSION, correlation_id, len(CLIENT_ID)) + CLIENT_ID
    # topics: empty array (not null: null means "all topics"), allow_auto_topic_creation
    body = struct.pack(">i?", 0, False)
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        buf += chunk
    return bytes(buf)


def metadata_brokers(host: str, port: int, timeout: float) -> list[tuple[int, str, int]]:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(_request(1))
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        data = _recv_exact(sock, size)
    pos = 0

    def take(fmt: str) -> tuple[int, ...]:
        nonlocal pos
        values = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return values

    def string() -> str | None:
        nonlocal pos
        (length,) = take(">h")
        if length < 0:
            return None
        value = data[pos : pos + length].decode()
        pos += length
        return value

    (correlation_id,) = take(">i")
    if correlation_id != 1:
        raise ValueError(f"unexpected correlation id {correlation_id}")
    take(">i")  # throttle_time_ms
    (count,) = take(">i")
    brokers = []
    for _ in range(count):
        (node_id,) = take(">i")
        broker_host = string() or ""
        (broker_port,) = take(">i")
        string()  # rack
        brokers.append((node_id, broker_host, broker_port))
    return brokers


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    timeout = 2.0
    if len(argv) >= 3 and argv[1] == "--timeout":
        timeout = float(argv[2])
    host, _, port = argv[0].rpartition(":")
    try:
        brokers = metadata_brokers(host or "127.0.0.1", int(port), timeout)
    except (OSError, ValueError, struct.error) as exc:
        print(f"no answer from {argv[0]}: {exc}", file=sys.stderr)
        return 1
    if not brokers:
        print(f"{argv[0]} answered but lists no broker yet", file=sys.stderr)
        return 1
    print("brokers: " + ", ".join(f"{n}@{h}:{p}" for n, h, p in brokers))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
