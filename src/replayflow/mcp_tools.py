"""Tools of MCP servers as durable steps (the `mcp` package; `pip install replayflow[ai]`).

    weather = McpServer.stdio(sys.executable, "examples/mcp_server.py")
    report = await weather.call(ctx, "forecast", {"city": "Lisbon"})   # one step

Each request is the built-in step `rf_mcp`: it connects (stdio: starts the command;
streamable HTTP: the URL), sends one MCP request and records its JSON-RPC result in
history, so a replay answers from the record and never reaches the server again. A
tool that reports an error (isError) fails the step for good (McpToolError); a server
that cannot be reached fails the attempt, and the step's retry policy runs it again.
The DSL's `call: mcp` task runs the same request (dsl/builtins.py).

Workers started by the CLI register the step; elsewhere add this module to the
Registry (`Registry.of(workflows, replayflow.mcp_tools)`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from replayflow.core.context import Context, StepRequest
from replayflow.core.definitions import step
from replayflow.core.errors import NonRetryableError, ValidationError
from replayflow.core.policy import Retry

#: MCP methods a step may send (the DSL's list).
METHODS = (
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/read",
    "resources/templates/list",
)
DEFAULT_TIMEOUT_S = 60.0


class McpToolError(NonRetryableError):
    """The server ran the tool and reported an error: running it again will not help."""


@dataclass(frozen=True)
class McpServer:
    """Where an MCP server is: a command to start (stdio) or a URL (streamable HTTP)."""

    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] | None = field(default=None, hash=False)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if (self.command is None) == (self.url is None):
            raise ValidationError("an MCP server has a command (stdio) or a url (HTTP), not both")

    @classmethod
    def stdio(
        cls, command: str, *args: str, env: dict[str, str] | None = None, cwd: str | None = None
    ) -> McpServer:
        return cls(command=command, args=tuple(args), env=env, cwd=cwd)

    @classmethod
    def http(cls, url: str, headers: dict[str, str] | None = None) -> McpServer:
        return cls(url=url, headers=headers)

    def spec(self) -> dict[str, Any]:
        """JSON for a step's input (and history): what from_spec reads back."""
        if self.url is not None:
            return {"url": self.url, "headers": self.headers or {}}
        return {"command": self.command, "args": list(self.args), "env": self.env, "cwd": self.cwd}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> McpServer:
        if "url" in spec:
            return cls.http(str(spec["url"]), dict(spec.get("headers") or {}))
        return cls.stdio(
            str(spec["command"]),
            *[str(a) for a in spec.get("args") or []],
            env=spec.get("env"),
            cwd=spec.get("cwd"),
        )

    # -- in a workflow: each call is a step ---------------------------------------------

    def request(
        self,
        ctx: Context,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        timeout: float | None = None,
    ) -> StepRequest:
        """Send one MCP request as a step; await its JSON-RPC result."""
        if method not in METHODS:
            raise ValidationError(f"MCP method {method!r} is not one of {', '.join(METHODS)}")
        step_name = name or "mcp-" + method.replace("/", "-")
        return ctx.step(step_name, mcp_request, self.spec(), method, params or {}, timeout)

    def call(
        self, ctx: Context, tool: str, arguments: dict[str, Any] | None = None, **options: Any
    ) -> StepRequest:
        """Call a tool as a step named `mcp-<tool>`; await its result (the CallToolResult
        as JSON: `content`, and `structuredContent` when the tool returns data)."""
        options.setdefault("name", f"mcp-{tool}")
        return self.request(
            ctx, "tools/call", {"name": tool, "arguments": arguments or {}}, **options
        )

    def list_tools(self, ctx: Context, **options: Any) -> StepRequest:
        return self.request(ctx, "tools/list", **options)


# -- the step ---------------------------------------------------------------------------


@step(name="rf_mcp", retry=Retry(limit=3, delay="1s", backoff="exponential", max_delay="10s"))
def mcp_request(
    server: dict[str, Any], method: str, params: dict[str, Any], timeout: float | None = None
) -> Any:
    result = send(McpServer.from_spec(server), method, params, timeout)
    if method == "tools/call" and result.get("isError"):
        raise McpToolError(f"MCP tool {params.get('name')!r} failed: {text_of(result)}")
    return result


def send(
    server: McpServer, method: str, params: dict[str, Any], timeout: float | None = None
) -> dict[str, Any]:
    """One MCP request on a fresh connection: its result as JSON."""
    return asyncio.run(_send(server, method, params, timeout or DEFAULT_TIMEOUT_S))


async def _send(
    server: McpServer, method: str, params: dict[str, Any], timeout: float
) -> dict[str, Any]:
    from mcp import Client

    async with asyncio.timeout(timeout), Client(_target(server)) as client:
        if method == "tools/list":
            result: Any = await client.list_tools()
        elif method == "tools/call":
            result = await client.call_tool(params["name"], params.get("arguments") or {})
        elif method == "prompts/list":
            result = await client.list_prompts()
        elif method == "prompts/get":
            result = await client.get_prompt(params["name"], params.get("arguments") or {})
        elif method == "resources/list":
            result = await client.list_resources()
        elif method == "resources/read":
            result = await client.read_resource(params["uri"])
        elif method == "resources/templates/list":
            result = await client.list_resource_templates()
        else:
            raise ValidationError(f"MCP method {method!r} is not one of {', '.join(METHODS)}")
    dumped: dict[str, Any] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def _target(server: McpServer) -> Any:
    if server.url is not None:
        if not server.headers:
            return server.url
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        client = create_mcp_http_client(headers=server.headers)
        return streamable_http_client(server.url, http_client=client)
    from mcp.client.stdio import StdioServerParameters

    return StdioServerParameters(
        command=server.command or "", args=list(server.args), env=server.env, cwd=server.cwd
    )


def text_of(result: dict[str, Any]) -> str:
    """The text parts of a tool result, joined."""
    parts = [c.get("text", "") for c in result.get("content") or [] if c.get("type") == "text"]
    return "\n".join(p for p in parts if p) or "(no text)"
