#!/usr/bin/env python3
"""Does a local Kafka cluster list all its brokers?  (needs confluent-kafka)

    python cluster_ready.py HOST:PORT[,HOST:PORT...] --brokers N [--timeout SECONDS]

Waits until the cluster's metadata lists N brokers (every node registered and not
fenced: only then can a topic with replication N be created), exit 0; exit 1 with one
line on stderr at the timeout. Used by kafka.sh after starting a cluster (BROKERS > 1).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bootstrap")
    parser.add_argument("--brokers", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    from confluent_kafka.admin import AdminClient

    quiet = logging.getLogger("cluster_ready")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    admin = AdminClient({"bootstrap.servers": args.bootstrap, "logger": quiet})
    deadline = time.monotonic() + args.timeout
    seen = 0
    while time.monotonic() < deadline:
        try:
            seen = len(admin.list_topics(timeout=2).brokers)
        except Exception:  # KafkaException while the quorum forms: ask again
            seen = 0
        if seen >= args.brokers:
            return 0
        time.sleep(0.3)
    print(f"{args.bootstrap} lists {seen} of {args.brokers} brokers", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
