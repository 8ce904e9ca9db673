"""The YAML pipeline of examples/pipeline.yaml, with what it needs around it: the
`write_report` step it calls, and a tiny local HTTP service that serves orders and
accepts summaries (so the demo needs no internet)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import replayflow as rf

HERE = Path(__file__).parent
DOCUMENT = HERE / "pipeline.yaml"
ORDERS = [
    {"id": 1, "customer": "ada", "status": "paid", "qty": 2, "price": 10},
    {"id": 2, "customer": "bob", "status": "cancelled", "qty": 1, "price": 99},
    {"id": 3, "customer": "ada", "status": "paid", "qty": 1, "price": 5},
    {"id": 4, "customer": "cy", "status": "paid", "qty": 3, "price": 7},
]


@rf.step
def write_report(path: str, report: dict[str, Any]) -> str:
    """Write the report as JSON; idempotent (same content on every attempt)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return str(target)


class OrdersService:
    """GET /orders -> the orders; POST /summaries -> {"accepted": true}."""

    def __init__(self) -> None:
        self.summaries: list[Any] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/orders":
                    self._reply(200, {"orders": ORDERS})
                else:
                    self._reply(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                service.summaries.append(json.loads(self.rfile.read(length) or b"null"))
                self._reply(200, {"accepted": True})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> OrdersService:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
