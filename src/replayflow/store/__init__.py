"""The partition store: instance state, timer index, admission queues and the changelog
offset of one partition, in RocksDB (rocksdict)."""
