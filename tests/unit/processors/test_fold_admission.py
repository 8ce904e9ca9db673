"""Admission queues in the partition store (each implementation): first in, first
out, within a batch and across batches, read from the limiter's head."""

from __future__ import annotations

import replayflow as rf
from replayflow import codec
from replayflow.core.decide import Decider
from replayflow.core.messages import AcquireSlot, GrantSlot, ReleaseSlot
from replayflow.processors.fold import PartitionFolder
from replayflow.store.protocol import Store

LIMITER = "~limiter:w"


def grants(folder: PartitionFolder) -> list[str]:
    found = [codec.decode(r.value) for r in folder.records if r.topic == "commands"]
    return [g.instance_id for g in found if isinstance(g, GrantSlot)]


def test_grants_follow_queue_order_within_and_across_batches(store: Store) -> None:
    folder = PartitionFolder(store, Decider(rf.Registry()))
    ids = [f"i{n:03d}" for n in range(60)]
    for instance_id in ids:
        folder.fold(AcquireSlot(limiter=LIMITER, instance_id=instance_id, limit=2), 0)
    granted = grants(folder)
    assert granted == ids[:2]
    # Releases in the same batch as the enqueues see the batch's pending entries.
    for instance_id in ids[:10]:
        folder.fold(ReleaseSlot(limiter=LIMITER, instance_id=instance_id), 0)
    granted = grants(folder)
    assert granted == ids[:12]
    folder.committed(None)
    # Later batches read from RocksDB, starting at the head.
    for batch in range(4):
        for instance_id in ids[10 + batch * 12 : 22 + batch * 12]:
            folder.fold(ReleaseSlot(limiter=LIMITER, instance_id=instance_id), 0)
        granted += grants(folder)
        folder.committed(None)
    assert granted == ids
