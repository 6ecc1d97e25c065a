"""Errors as OpenAI's API writes them: `{"error": {"message", "type", "param", "code"}}`,
so clients that know OpenAI (the `openai` package, `llm`) show the message as it is.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gritdesk.errors import GritdeskError
from gritdesk.runtime.errors import EmptyInputError, InputTooLongError


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def from_gritdesk_error(exc: GritdeskError, param: str | None = None) -> ApiError:
    """A user-fixable error from the engine or the index, as a 400 that keeps its message."""
    if isinstance(exc, InputTooLongError):
        return ApiError(400, str(exc), param=param, code="context_length_exceeded")
    if isinstance(exc, EmptyInputError):
        return ApiError(400, str(exc), param=param, code="empty_input")
    return ApiError(400, str(exc), param=param, code="invalid_value")


def queue_full(retry_after_s: int) -> ApiError:
    return ApiError(
        503,
        "the engine's queue is full: retry shortly",
        type="server_error",
        code="queue_full",
        headers={"Retry-After": str(retry_after_s)},
    )


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def http_exception_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own 404/405 as OpenAI error objects too."""
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "error")
    return ApiError(status, str(detail), code="not_found" if status == 404 else None).response()


async def internal_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    return ApiError(
        500, f"internal error: {type(exc).__name__}: {exc}", type="server_error"
    ).response()
