"""Workflows that call tools of examples/mcp_server.py (importable by workers)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import replayflow as rf
from replayflow.mcp_tools import McpServer, mcp_request

SERVER_SCRIPT = str(Path(__file__).resolve().parents[2] / "examples" / "mcp_server.py")


def server(spec: dict[str, Any]) -> McpServer:
    if spec.get("url"):
        return McpServer.http(spec["url"])
    calls = os.environ.get("MCP_CALLS_FILE")
    return McpServer.stdio(
        sys.executable, SERVER_SCRIPT, env={"MCP_CALLS_FILE": calls} if calls else None
    )


@rf.workflow(name="mcp_flights")
async def flights(ctx: rf.Context, spec: dict[str, Any]) -> Any:
    tools = server(spec)
    listed = await tools.list_tools(ctx)
    found = await tools.call(ctx, "search_flights", {"destination": "Lisbon", "max_price": 430})
    weather = await tools.call(ctx, spec.get("tool", "forecast"), {"city": "Lisbon"})
    return {
        "tools": sorted(t["name"] for t in listed["tools"]),
        "flights": found["content"][0]["text"],
        "weather": weather["content"][0]["text"],
    }


__all__ = ["flights", "mcp_request"]
DSL = """
document: {{dsl: '1.0.3', namespace: test, name: mcp-dsl, version: '1.0.0'}}
do:
  - find:
      call: mcp
      with:
        method: tools/call
        parameters:
          name: search_flights
          arguments:
            destination: ${{ .to }}
            max_price: 430
        transport:
          stdio:
            command: {python}
            arguments: [{script}]
            environment:
              MCP_CALLS_FILE: {calls}
      output:
        as: ${{ .content[0].text | fromjson }}
"""
