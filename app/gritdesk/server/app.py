"""The ASGI application: routes, the API key check, OpenAI error objects, and the engine
thread started and stopped with the app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from gritdesk.server.auth import ApiKeyMiddleware
from gritdesk.server.engine_worker import EngineWorker
from gritdesk.server.errors import (
    ApiError,
    api_error_handler,
    http_exception_handler,
    internal_error_handler,
)
from gritdesk.server.routes import Api
from gritdesk.server.settings import ServeSettings


def create_app(worker: EngineWorker, settings: ServeSettings) -> Starlette:
    api = Api(worker, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        worker.start()
        try:
            yield
        finally:
            worker.stop()

    routes = [
        Route("/health", api.health, methods=["GET"]),
        Route("/debug/metrics", api.metrics, methods=["GET"]),
        Route("/v1/models", api.models, methods=["GET"]),
        Route("/v1/embeddings", api.embeddings, methods=["POST"]),
        Route("/v1/chat/completions", api.chat_completions, methods=["POST"]),
        Route("/v1/rerank", api.rerank, methods=["POST"]),
        Route("/rerank", api.rerank, methods=["POST"]),  # llama.cpp's server spells it both ways
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(ApiKeyMiddleware, api_key=settings.api_key)],
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_exception_handler,
            Exception: internal_error_handler,
        },
        lifespan=lifespan,
    )
