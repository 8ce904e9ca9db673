"""The pure core: state, commands, events, decide() and the replay driver.

Nothing in this package touches Kafka, RocksDB, the clock, threads or the network.
"""
