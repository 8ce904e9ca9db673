"""What a broker holds when the engine stops making progress, for a test's failure message.

A test that waits for progress after a broker restart and gets none cannot tell from
the processes' logs where it stopped: an open transaction on a partition (its readers
stop at the last stable offset), a group whose offsets are pending in a transaction
(its members cannot read where to start), or a group with no member holding the
partitions. `report` asks the broker for each of those and returns them as text:

    partitions whose last stable offset is behind their end (read_committed readers wait)
    each group of the namespace: state, members and what each holds
    each group's committed offsets, read as a stable read (require_stable) would

Read only; it changes nothing on the broker.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition

from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.open_transactions import OFFSETS_TOPIC, offsets_partition, stable_and_end

TIMEOUT = 10.0
TRANSACTIONS_TOPIC = "__transaction_state"
_INTERNAL = (OFFSETS_TOPIC, TRANSACTIONS_TOPIC)


def report(bootstrap: str, namespace: str) -> str:
    """The broker's view of the namespace's topics and groups (see the module's text);
    a question the broker did not answer is said so, never raised."""
    admin = clients.admin(bootstrap)
    lines: list[str] = []
    try:
        topics = sorted(
            name
            for name in admin.list_topics(timeout=TIMEOUT).topics
            if name.startswith(f"{namespace}.") or name in _INTERNAL
        )
        partitions = [(t, p) for t in topics for p in topic_partitions(admin, t, TIMEOUT)]
        offsets = stable_and_end(admin, partitions, TIMEOUT)
        behind = {k: v for k, v in offsets.items() if v[0] < v[1]}
        lines.append(
            f"partitions asked {len(partitions)}, answered {len(offsets)}; "
            f"last stable offset behind the end: {len(behind)}"
        )
        for (topic, partition), (stable, end) in sorted(behind.items()):
            lines.append(f"  {topic}[{partition}] stable {stable} end {end}")
        lines += _groups(admin, namespace, offsets)
    except Exception as exc:  # a report must not hide the failure it explains
        lines.append(f"report cut short: {type(exc).__name__}: {exc}")
    return "\n".join(lines)


def _groups(
    admin: Any, namespace: str, offsets: dict[tuple[str, int], tuple[int, int]]
) -> list[str]:
    listed = admin.list_consumer_groups(request_timeout=TIMEOUT).result(timeout=TIMEOUT)
    groups = sorted(g.group_id for g in listed.valid if g.group_id.startswith(f"{namespace}."))
    lines = [f"groups of the namespace: {len(groups)}"]
    if not groups:
        return lines
    described = admin.describe_consumer_groups(groups, request_timeout=TIMEOUT)
    for group in groups:
        part = offsets_partition(group, _offsets_partitions(admin))
        lines.append(f"  {group} (offsets in {OFFSETS_TOPIC}[{part}]):")
        try:
            desc = described[group].result(timeout=TIMEOUT)
            lines.append(f"    state {desc.state}, {len(desc.members)} member(s)")
            for member in desc.members:
                held = sorted(
                    f"{tp.topic.rsplit('.', 1)[-1]}[{tp.partition}]"
                    for tp in member.assignment.topic_partitions
                )
                lines.append(
                    f"    member {member.group_instance_id or member.member_id}: "
                    f"{', '.join(held) or 'nothing'}"
                )
        except KafkaException as exc:
            lines.append(f"    not described: {exc}")
        lines.append(f"    committed (stable read): {_committed(admin, group, offsets)}")
    return lines


def _offsets_partitions(admin: Any) -> int:
    return len(topic_partitions(admin, OFFSETS_TOPIC, TIMEOUT)) or 50


def _committed(admin: Any, group: str, offsets: dict[tuple[str, int], tuple[int, int]]) -> str:
    """The group's committed offsets as `topic[p]=offset` (with the partition's LSO and
    end when it is behind), or the error a stable read gets (UNSTABLE_OFFSET_COMMIT
    while a transaction holding the group's offsets is open)."""
    # Asked by partition: asked for all, the broker leaves pending offsets out silently.
    asked = [TopicPartition(t, p) for t, p in sorted(offsets) if t not in _INTERNAL]
    request = [ConsumerGroupTopicPartitions(group, asked)]
    future = admin.list_consumer_group_offsets(
        request, require_stable=True, request_timeout=TIMEOUT
    )[group]
    try:
        result = future.result(timeout=TIMEOUT)
    except KafkaException as exc:
        return f"error {exc}"
    shown = []
    for tp in sorted(result.topic_partitions, key=lambda t: (t.topic, t.partition)):
        if tp.offset < 0 and tp.error is None:
            continue  # nothing committed
        stable, end = offsets.get((tp.topic, tp.partition), (None, None))
        short = f"{tp.topic.rsplit('.', 1)[-1]}[{tp.partition}]={tp.offset}"
        if tp.error is not None:
            short += f" ({tp.error})"
        elif stable is not None and tp.offset < end:
            short += f" (stable {stable}, end {end})"
        shown.append(short)
    return ", ".join(shown) or "none"
