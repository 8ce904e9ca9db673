"""A small MCP server for the examples and tests: flight search and a weather report.

    python examples/mcp_server.py                  # stdio (what the agent example starts)
    python examples/mcp_server.py --http 8765      # streamable HTTP on 127.0.0.1:8765/mcp

Deterministic answers, no network. Each call appends a line to $MCP_CALLS_FILE when it
is set, so tests can count what reached the server.
"""

from __future__ import annotations

import argparse
import os

from mcp.server.mcpserver import MCPServer

server = MCPServer("replayflow-example-tools")

FLIGHTS = {
    "lisbon": [
        {"id": "TP1234", "price": 420, "departs": "08:10"},
        {"id": "FR8821", "price": 380, "departs": "06:35"},
        {"id": "LH1172", "price": 455, "departs": "13:20"},
    ],
}


def _count(tool: str) -> None:
    path = os.environ.get("MCP_CALLS_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as calls:
            calls.write(tool + "\n")


@server.tool()
def search_flights(destination: str, max_price: int = 10_000) -> dict:
    """Flights to a destination at or under a price (EUR), cheapest first."""
    _count("search_flights")
    found = [f for f in FLIGHTS.get(destination.lower(), []) if f["price"] <= max_price]
    return {"destination": destination, "flights": sorted(found, key=lambda f: f["price"])}


@server.tool()
def forecast(city: str) -> str:
    """Tomorrow's weather in a city."""
    _count("forecast")
    return f"{city}: sunny, 24 °C"


@server.tool()
def fail(reason: str = "on purpose") -> str:
    """Always fails (for tests of tool errors)."""
    raise ValueError(f"this tool fails {reason}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--http", type=int, default=None, help="serve streamable HTTP on this port")
    args = parser.parse_args()
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        server.run()
