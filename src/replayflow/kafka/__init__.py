"""The one place that talks to Kafka: client settings, constructors, murmur2 routing,
reading a topic to its end, producing with acknowledgement, and the admin API.

    from replayflow.kafka import clients, reading
    consumer = clients.consumer(settings, None)          # a reader, no group offsets
    for batch in reading.read_to_end(consumer, topic, [0, 1, 2]):
        ...

Everything above this package (processors, dsl shells, client, api, cli) builds its
Kafka clients here, so timeouts, logging, compression and the partitioner are set once.
"""
