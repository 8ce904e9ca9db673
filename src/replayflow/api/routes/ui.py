"""The web UI's static files (open, like /health) and / sending a browser there."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from replayflow.api.errors import ApiError
from replayflow.api.operations import Operation, Reply
from replayflow.api.request_models import UiFilePath

TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


class Ui:
    def operations(self) -> list[Operation]:
        return [
            Operation(
                "GET",
                "/",
                self.root,
                "the web UI (a redirect to /ui/)",
                {302: Reply("to /ui/", media=())},
                errors=(),
            ),
            Operation(
                "GET",
                "/ui/",
                self.index,
                "the web UI",
                {200: Reply("its page", media=("text/html",))},
                errors=(),
            ),
            Operation(
                "GET",
                "/ui/{file}",
                self.file,
                "a file of the web UI",
                {200: Reply("the file", media=tuple(TYPES.values()))},
                errors=(404,),
                path_params=UiFilePath,
            ),
        ]

    async def index(self, request: web.Request) -> web.StreamResponse:
        return self._serve("index.html")

    async def file(self, request: web.Request, path: UiFilePath) -> web.StreamResponse:
        return self._serve(path.file)

    def _serve(self, name: str) -> web.StreamResponse:
        suffix = name[name.rfind(".") :] if "." in name else ""
        if suffix not in TYPES or "/" in name or name.startswith("."):
            raise ApiError(404, f"no UI file {name!r}")
        resource = resources.files("replayflow.api") / "ui" / name
        if not resource.is_file():
            raise ApiError(404, f"no UI file {name!r}")
        return web.Response(
            body=resource.read_bytes(),
            content_type=TYPES[suffix],
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    async def root(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/ui/")
