"""The API's one error type and the JSON body every error answer has."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from replayflow.core.errors import ReplayflowError


class ApiError(ReplayflowError):
    """A request the API refuses: `status` is the HTTP status of the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ErrorDetail(BaseModel):
    status: int
    message: str


class ErrorReply(BaseModel):
    """Every 4xx and 5xx answer: {"error": {"status", "message"}}."""

    error: ErrorDetail


def error_response(status: int, message: str) -> web.Response:
    body = ErrorReply(error=ErrorDetail(status=status, message=message))
    return web.json_response(body.model_dump(), status=status)
