"""A local stand-in for the public services the CTK calls (petstore.swagger.io,
httpbin.org), on 127.0.0.1 with a free port, answering as they would."""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PETS = [
    {"id": 1, "name": "doggie", "status": "available", "photoUrls": [], "tags": []},
    {"id": 2, "name": "milou", "status": "available", "photoUrls": [], "tags": []},
    {"id": 3, "name": "rex", "status": "pending", "photoUrls": [], "tags": []},
]
PUBLIC = {"https://petstore.swagger.io": "/petstore", "https://httpbin.org": "/httpbin"}


class Services:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Services:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def rewrite(self, text: str) -> str:
        """Point a document's public URLs at this server."""
        for public, prefix in PUBLIC.items():
            text = text.replace(public, self.base + prefix)
        return text

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        services = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                services.requests.append(
                    {
                        "method": self.command,
                        "path": url.path,
                        "query": url.query,
                        "headers": dict(self.headers),
                        "body": body.decode(errors="replace"),
                    }
                )
                path = url.path
                if path == "/petstore/v2/pet/findByStatus":
                    status = parse_qs(url.query).get("status", ["available"])[0]
                    return self._send(200, [p for p in PETS if p["status"] == status])
                match = re.fullmatch(r"/petstore/v2/pet/(\d+)", path)
                if match:
                    pet = next((p for p in PETS if p["id"] == int(match[1])), None)
                    if pet is None:
                        return self._send(
                            404, {"code": 1, "type": "error", "message": "Pet not found"}
                        )
                    return self._send(200, pet)
                if path.startswith("/petstore/"):
                    return self._send(
                        404, {"code": 404, "type": "unknown", "message": "HTTP 404 Not Found"}
                    )
                match = re.fullmatch(r"/httpbin/basic-auth/([^/]+)/([^/]+)", path)
                if match:
                    expected = (
                        "Basic " + base64.b64encode(f"{match[1]}:{match[2]}".encode()).decode()
                    )
                    if self.headers.get("Authorization") != expected:
                        return self._send(401, {"authenticated": False})
                    return self._send(200, {"authenticated": True, "user": match[1]})
                match = re.fullmatch(r"/httpbin/status/(\d+)", path)
                if match:
                    return self._send(int(match[1]), {"status": int(match[1])})
                if path.startswith("/httpbin/anything"):
                    return self._send(
                        200,
                        {
                            "method": self.command,
                            "path": path,
                            "json": json.loads(body) if body else None,
                        },
                    )
                return self._send(404, {"message": f"no route {path}"})

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _route

        return Handler
