"""`replayflow serve | status | list`: the API process, and two commands that use it.

status and list ask the HTTP API at REPLAYFLOW_API (default http://127.0.0.1:8080),
with REPLAYFLOW_API_TOKEN as bearer token when set.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import httpx

from replayflow.cli.support import one_line_errors, settings

DEFAULT_API = "http://127.0.0.1:8080"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--token", default=None, help="Bearer token required by the API [env REPLAYFLOW_API_TOKEN]."
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for the read model's RocksDB files.",
)
@click.option("-v", "--verbose", is_flag=True)
@one_line_errors
def serve(host: str, port: int, token: str | None, data_dir: Path | None, verbose: bool) -> None:
    """The HTTP API and web UI (a faust app over the history topic); Ctrl-C stops it."""
    import logging

    from replayflow.api.app import ApiConfig, run

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    config = ApiConfig.from_env(settings(), host=host, port=port, token=token, data_dir=data_dir)
    click.echo(f"replayflow API and UI on {config.url} (UI: {config.url}/ui/)", err=True)
    run(config, loglevel="info" if verbose else "warning")


def _api() -> tuple[str, dict[str, str]]:
    base = (os.environ.get("REPLAYFLOW_API", "").strip() or DEFAULT_API).rstrip("/")
    token = os.environ.get("REPLAYFLOW_API_TOKEN", "").strip()
    return base, ({"Authorization": f"Bearer {token}"} if token else {})


def _get(path: str, params: dict[str, Any] | None = None) -> Any:
    base, headers = _api()
    try:
        response = httpx.get(base + path, params=params, headers=headers, timeout=15)
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"cannot reach the API at {base} ({exc}); start it "
            "with `replayflow serve` or set REPLAYFLOW_API"
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        message = (
            (body or {}).get("error", {}).get("message")
            if isinstance(body, dict)
            else response.text
        )
        raise click.ClickException(f"{response.status_code}: {message}")
    return body


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


@click.command()
@click.argument("instance_id")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@one_line_errors
def status(instance_id: str, as_json: bool) -> None:
    """An instance's status, timings and steps (from the API's read model)."""
    from urllib.parse import quote

    path = "/v1/instances/" + quote(instance_id, safe="")
    instance = _get(path)
    steps = _get(path + "/steps", {"limit": 1000})["items"]
    if as_json:
        click.echo(json.dumps({**instance, "timeline": steps}, indent=2))
        return
    click.echo(
        f"{instance['id']}  {instance['workflow']}@{instance['version']}  {instance['status']}"
    )
    click.echo(
        f"  started {_when(instance['started_at'])}  "
        f"ended {_when(instance['ended_at'])}  seq {instance['seq']}"
    )
    for upgrade in instance.get("upgrades") or []:
        click.echo(
            f"  upgraded {upgrade['from_version']} -> {upgrade['to_version']} "
            f"at {_when(upgrade['at'])} (seq {upgrade['seq']})"
        )
    if instance.get("output") is not None:
        click.echo(f"  output  {instance['output']}")
    if instance.get("error"):
        click.echo(f"  error   {instance['error']['type']}: {instance['error']['message']}")
    if instance.get("reason"):
        click.echo(f"  reason  {instance['reason']}")
    for step in steps:
        attempts = len(step.get("attempts") or [])
        took = ""
        if step.get("ended_at") and step.get("started_at"):
            took = f"{step['ended_at'] - step['started_at']} ms"
        extra = f"  attempts {attempts}" if attempts else ""
        click.echo(f"  {step['kind']:<6} {step['key']:<30} {step['status']:<10} {took}{extra}")


@click.command("list")
@click.option("--workflow", default=None, help="Only this workflow.")
@click.option("--status", "status_", default=None, help="Only this status (RUNNING, ...).")
@click.option("--limit", default=50, show_default=True, help="Instances to show.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per instance.")
@one_line_errors
def list_(workflow: str | None, status_: str | None, limit: int, as_json: bool) -> None:
    """Instances, newest first, with counts by status (from the API)."""
    params: dict[str, Any] = {"limit": min(max(limit, 1), 500)}
    if workflow:
        params["workflow"] = workflow
    if status_:
        params["status"] = status_.upper()
    page = _get("/v1/instances", params)
    if as_json:
        for item in page["items"]:
            click.echo(json.dumps(item))
        return
    click.echo(f"{'ID':<40} {'WORKFLOW':<20} {'STATUS':<10} {'STARTED (UTC)':<19}  STEPS")
    for item in page["items"]:
        click.echo(
            f"{item['id']:<40} {item['workflow']:<20} {item['status']:<10} "
            f"{_when(item['started_at']):<19}  {item['steps']}"
        )
    counts = _get("/v1/counts", {"workflow": workflow} if workflow else None)
    shown = ", ".join(f"{k.lower()} {v}" for k, v in counts["counts"].items() if v)
    click.echo(f"{counts['total']} instances" + (f": {shown}" if shown else ""), err=True)


COMMANDS = (serve, status, list_)
