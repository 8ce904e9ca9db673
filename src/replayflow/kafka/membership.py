"""Leaving a consumer group and closing a consumer, each under a deadline (a broker
that is away must not hold a stopping process).

A static member (group.instance.id) sends no LeaveGroup when it closes, so its
partitions would wait a whole session timeout for it; `leave_and_close` unsubscribes
first, which sends the LeaveGroup once the revocation is served."""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaException

from replayflow.core.clip import clip
from replayflow.kafka.watchdog import GRACE, Hung, guarded

log = logging.getLogger("replayflow.kafka")

CLOSE_DEADLINE = 10.0  # seconds a consumer's close may take before it is left behind
LEAVE_WAIT = 3.0  # seconds a stopping member waits for its revocation before closing


def leave_and_close(consumer: Consumer) -> None:
    """Leave the group, then close. A static member's close() sends no LeaveGroup, but
    unsubscribe() does once the revocation is served; without it the partitions would
    wait a session timeout for this worker."""

    def leave() -> None:
        consumer.unsubscribe()
        give_up = time.monotonic() + LEAVE_WAIT
        while True:
            consumer.poll(0.05)  # serves the revocation; the LeaveGroup follows it
            if not consumer.assignment() or time.monotonic() > give_up:
                return

    try:
        guarded("consumer leave", LEAVE_WAIT + GRACE, leave)
    except (Hung, KafkaException, RuntimeError) as exc:  # the session timeout does it then
        log.info("leaving the group: %s", clip(str(exc)))
    close_consumer(consumer)


def close_consumer(consumer: Consumer) -> None:
    try:
        guarded("consumer close", CLOSE_DEADLINE, consumer.close)
    except Hung:
        log.warning("the consumer did not close within %g s: left behind", CLOSE_DEADLINE)
    except (KafkaException, RuntimeError) as exc:
        log.info("closing the consumer: %s", clip(str(exc)))
