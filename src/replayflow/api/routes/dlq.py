"""/v1/dlq: the dead-letter topic's entries, and redriving one (api/dlq.py does both)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from replayflow.api.dlq import DeadLetterError, DeadLetters
from replayflow.api.errors import ApiError
from replayflow.api.operations import STANDARD_ERRORS, Operation, Reply
from replayflow.api.reply_models import DeadLetters as DeadLettersReply
from replayflow.api.reply_models import Redriven
from replayflow.api.request_models import DeadLetterPath, DeadLettersQuery


class DeadLetterRoutes:
    def __init__(self, dead_letters: DeadLetters) -> None:
        self.dead_letters = dead_letters

    def operations(self) -> list[Operation]:
        return [
            Operation(
                "GET",
                "/v1/dlq",
                self.list,
                "dead-letter entries, newest last",
                {200: Reply("entries", DeadLettersReply)},
                query=DeadLettersQuery,
            ),
            Operation(
                "POST",
                "/v1/dlq/{entry}/redrive",
                self.redrive,
                "produce the entry's original record to its source topic, once",
                {202: Reply("redriven", Redriven)},
                errors=(404, 409, *STANDARD_ERRORS),
                path_params=DeadLetterPath,
            ),
        ]

    async def list(self, request: web.Request, query: DeadLettersQuery) -> web.Response:
        entries = await asyncio.to_thread(self.dead_letters.list, query.limit)
        return web.json_response({"items": entries})

    async def redrive(self, request: web.Request, path: DeadLetterPath) -> web.Response:
        try:
            result = await asyncio.to_thread(self.dead_letters.redrive, path.entry)
        except DeadLetterError as exc:
            raise ApiError(exc.status, str(exc)) from None
        return web.json_response(result, status=202)
