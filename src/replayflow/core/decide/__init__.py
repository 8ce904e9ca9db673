"""decide(): the fold, split by concern behind one dispatch table (decider.py).

decider     Decider: one handler per command type
runner      running the workflow code: the coroutine cache, new calls, endings
admission   start, and queueing under a concurrency limit
steps       step results            attempts   scheduling, retry or failure
timers      fired timers            calls      finding calls, timer ids
events      sent events, the inbox  waits      new sleeps and event waits
lifecycle   cancel, terminate, pause, resume, restart
children    child workflows
"""

from replayflow.core.decide.calls import SHORT_SLEEP_MS, WORKFLOW_TIMEOUT
from replayflow.core.decide.decider import Decider
from replayflow.core.decide.runner import LIMITER_PREFIX, Limits, limiter_key

__all__ = [
    "LIMITER_PREFIX",
    "SHORT_SLEEP_MS",
    "WORKFLOW_TIMEOUT",
    "Decider",
    "Limits",
    "limiter_key",
]
