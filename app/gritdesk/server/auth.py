"""The API key check: `Authorization: Bearer KEY` on every request but `/health`.

A pure ASGI middleware (not BaseHTTPMiddleware) so streamed responses and client
disconnects pass through it untouched.
"""

from __future__ import annotations

import secrets

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from gritdesk.server.errors import ApiError

OPEN_PATHS = frozenset({"/health"})


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.api_key and scope["path"] not in OPEN_PATHS:
            problem = self._problem(Headers(scope=scope).get("authorization"))
            if problem is not None:
                await problem.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _problem(self, header: str | None) -> ApiError | None:
        if not header:
            return ApiError(
                401,
                "no API key: send the header `Authorization: Bearer KEY`",
                code="missing_api_key",
            )
        scheme, _, token = header.partition(" ")
        assert self.api_key is not None
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            token.strip().encode(), self.api_key.encode()
        ):
            return ApiError(401, "the API key is wrong", code="invalid_api_key")
        return None
