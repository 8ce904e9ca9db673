"""Agent frameworks on the engine (`pip install replayflow[ai]`): a Pydantic AI agent
whose run is a workflow (DurableAgent). See docs/agents.md."""

from replayflow.ai.agent import DurableAgent
from replayflow.ai.bridge import Bridge, BridgeError

__all__ = ["Bridge", "BridgeError", "DurableAgent"]
