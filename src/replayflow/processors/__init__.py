"""The Kafka shell around the pure core: the orchestrator (the fold, exactly-once) and
workers (run steps, at least once)."""
