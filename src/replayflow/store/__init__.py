"""The partition store: instance state, timer index, admission queues, status counts
and the changelog offset of one partition. `Store` is the protocol the fold works
over; PartitionStore keeps it in RocksDB, MemoryStore in a dict (the test engine)."""

from replayflow.store.protocol import Store

__all__ = ["Store"]
