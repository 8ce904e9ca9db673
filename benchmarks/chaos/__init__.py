"""`make chaos`: the chaos scenarios of tests/chaos/scenarios.py at full size."""
