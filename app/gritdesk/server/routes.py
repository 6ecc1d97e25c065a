"""The endpoints: each validates its body, hands a job to the engine thread, and shapes the
result as OpenAI (or llama.cpp, for rerank) does. No engine call happens here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from gritdesk.errors import GritdeskError
from gritdesk.rag.ask_service import Answer
from gritdesk.runtime.engine import Engine, GenerationOptions
from gritdesk.server.chat_messages import chat_turns
from gritdesk.server.engine_jobs import (
    ChatJob,
    ChatOutcome,
    Embedded,
    EmbedJob,
    RagJob,
    RagRequest,
    Reranked,
    RerankJob,
    openai_finish_reason,
)
from gritdesk.server.engine_worker import EngineWorker, Job, JobCancelledError, QueueFullError
from gritdesk.server.errors import ApiError, from_gritdesk_error, queue_full
from gritdesk.server.schemas import (
    ChatRequest,
    EmbeddingsRequest,
    RagOptions,
    RerankRequest,
    read_body,
)
from gritdesk.server.settings import RAG_MODEL_ID, ServeSettings

# of `Answer.as_json`, beside a RAG reply's message
RAG_FIELDS = ("sources", "evidence", "not_found", "notices")


def model_id(engine: Engine) -> str:
    """A model's id in the API: its file name without `.gguf`."""
    return engine.path.name.removesuffix(".gguf")


@dataclass
class Api:
    worker: EngineWorker
    settings: ServeSettings

    def __post_init__(self) -> None:
        session = self.worker.session
        assert session.engine is not None
        self.embedder = session.engine
        self.generator = session.chat_engine or session.engine
        self.created = int(time.time())
        ids = [model_id(self.embedder), model_id(self.generator), RAG_MODEL_ID]
        self.model_ids = list(dict.fromkeys(ids))

    # --- helpers ---------------------------------------------------------------------------

    def _check_model(self, name: str | None) -> str:
        if name is None:
            return self.model_ids[0]
        if name not in self.model_ids:
            raise ApiError(
                404,
                f"model {name!r} is not served here; choose one of {', '.join(self.model_ids)}",
                param="model",
                code="model_not_found",
            )
        return name

    def _submit(self, job: Job) -> Job:
        try:
            return self.worker.submit(job)
        except QueueFullError:
            raise queue_full(self.settings.retry_after_s) from None

    async def _await_result(self, request: Request, job: Job, param: str | None) -> object:
        """The job's result; a client that disconnects meanwhile cancels the job."""
        watcher = asyncio.create_task(_cancel_on_disconnect(request, job))
        try:
            return await job.result()
        except (GritdeskError, JobCancelledError) as exc:
            raise api_error(exc, param) from None
        finally:
            watcher.cancel()

    async def _first_event(self, request: Request, job: Job) -> tuple[str, object]:
        watcher = asyncio.create_task(_cancel_on_disconnect(request, job))
        try:
            kind, value = await job.next_event()
        finally:
            watcher.cancel()
        if kind == "error":
            raise api_error(value, "messages")
        return kind, value

    # --- endpoints -------------------------------------------------------------------------

    async def health(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics(self, _request: Request) -> Response:
        return JSONResponse(self.worker.metrics.as_dict())

    async def models(self, _request: Request) -> Response:
        data = [
            {"id": name, "object": "model", "created": self.created, "owned_by": "gritdesk"}
            for name in self.model_ids
        ]
        return JSONResponse({"object": "list", "data": data})

    async def embeddings(self, request: Request) -> Response:
        body = await read_body(request, EmbeddingsRequest, self.settings.max_body_bytes)
        name = self._check_model(body.model)
        texts = [body.input] if isinstance(body.input, str) else body.input
        if not texts:
            raise ApiError(400, "input is an empty list", param="input")
        if len(texts) > self.settings.max_embedding_inputs:
            raise ApiError(
                400,
                f"input has {len(texts)} texts; at most {self.settings.max_embedding_inputs}",
                param="input",
            )
        if body.dimensions is not None and body.dimensions != self.embedder.embedding_dim:
            raise ApiError(
                400,
                f"dimensions {body.dimensions}: this model's vectors have "
                f"{self.embedder.embedding_dim}",
                param="dimensions",
            )
        if body.input_type == "document" and body.instruction is not None:
            raise ApiError(
                400,
                'instruction applies to queries: add "input_type": "query"',
                param="instruction",
            )
        instruction = None
        if body.input_type == "query":
            instruction = body.instruction or self.embedder.recipe.retrieval_instruction
        job = self._submit(EmbedJob(texts, instruction, self.settings.max_input_tokens))
        result = await self._await_result(request, job, "input")
        assert isinstance(result, Embedded)
        data = [
            {"object": "embedding", "index": i, "embedding": _encode(vector, body.encoding_format)}
            for i, vector in enumerate(result.vectors)
        ]
        usage = {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}
        return JSONResponse({"object": "list", "data": data, "model": name, "usage": usage})

    async def rerank(self, request: Request) -> Response:
        body = await read_body(request, RerankRequest, self.settings.max_body_bytes)
        name = self._check_model(body.model)
        documents = body.texts()
        if len(documents) > self.settings.max_rerank_documents:
            raise ApiError(
                400,
                f"{len(documents)} documents; at most {self.settings.max_rerank_documents}",
                param="documents",
            )
        job = self._submit(RerankJob(body.query, documents))
        result = await self._await_result(request, job, "query")
        assert isinstance(result, Reranked)
        order = sorted(range(len(documents)), key=lambda i: -result.scores[i])
        results = []
        for i in order[: body.top_n or len(order)]:
            item: dict[str, object] = {"index": i, "relevance_score": result.scores[i]}
            if body.return_documents:
                item["document"] = {"text": documents[i]}
            results.append(item)
        usage = {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}
        return JSONResponse({"model": name, "object": "list", "usage": usage, "results": results})

    async def chat_completions(self, request: Request) -> Response:
        body = await read_body(request, ChatRequest, self.settings.max_body_bytes)
        name = self._check_model(body.model)
        turns = chat_turns(body.messages)
        generation = self._generation_options(body)
        job: Job
        if name == RAG_MODEL_ID:
            rag = body.gritdesk or RagOptions()
            request = RagRequest(
                turns[-1].user,
                turns[:-1],
                k=rag.k,
                cache=rag.cache,
                rerank=rag.rerank,
                max_tokens=body.max_completion_tokens or body.max_tokens,
                max_tokens_limit=self._max_tokens_cap(),
                root=rag.root,
                sampling=generation,
            )
            job = self._submit(RagJob(self.worker.ask, request))
        else:
            if body.gritdesk is not None:
                raise ApiError(
                    400,
                    f'the "gritdesk" options are for the model {RAG_MODEL_ID!r}',
                    param="gritdesk",
                )
            job = self._submit(ChatJob(turns, generation, self.settings.max_input_tokens))
        reply = ChatReply(name)
        if body.stream:
            first = await self._first_event(request, job)
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(
                reply.sse(job, first, include_usage),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return JSONResponse(await reply.whole(request, job))

    def _max_tokens_cap(self) -> int:
        n_ctx = self.generator.n_ctx
        return min(self.settings.max_tokens or n_ctx, n_ctx)

    def _generation_options(self, body: ChatRequest) -> GenerationOptions:
        """Sampling as asked; max_tokens checked against the cap. A plain chat request that
        names none gets `serve.default_max_tokens`; a RAG answer the answering default."""
        cap = self._max_tokens_cap()
        wanted = body.max_completion_tokens or body.max_tokens
        param = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
        if wanted is not None and wanted > cap:
            raise ApiError(
                400, f"{param} {wanted} is over this server's limit of {cap}", param=param
            )
        seed = body.seed if body.seed is not None else secrets.randbits(31)
        return GenerationOptions(
            max_tokens=wanted or min(self.settings.default_max_tokens, cap),
            temperature=body.temperature,
            top_p=body.top_p,
            seed=seed,
            stop=body.stops(),
        )


@dataclass
class ChatReply:
    """One chat completion's response, whole or as server-sent events."""

    model: str

    def __post_init__(self) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def _base(self, kind: str) -> dict[str, object]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def _chunk(self, delta: dict[str, str], finish_reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return _event({**self._base("chat.completion.chunk"), "choices": [choice]})

    async def whole(self, request: Request, job: Job) -> dict[str, object]:
        pieces: list[str] = []
        watcher = asyncio.create_task(_cancel_on_disconnect(request, job))
        try:
            while True:
                kind, value = await job.next_event()
                if kind == "piece":
                    pieces.append(str(value))
                elif kind == "error":
                    raise api_error(value, "messages")
                elif kind == "done":
                    break
        finally:
            watcher.cancel()
        usage, finish, extra = _outcome(value)
        message = {"role": "assistant", "content": "".join(pieces)}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        return {**self._base("chat.completion"), "choices": [choice], "usage": usage, **extra}

    async def sse(
        self, job: Job, first: tuple[str, object], include_usage: bool
    ) -> AsyncIterator[str]:
        """Role chunk, content chunks, the finish chunk, then for RAG an event with the
        sources, the usage chunk if asked, and `data: [DONE]`. Leaving early (the client
        went away) cancels the job."""
        try:
            yield self._chunk({"role": "assistant", "content": ""})
            event = first
            while True:
                kind, value = event
                if kind == "piece":
                    yield self._chunk({"content": str(value)})
                elif kind == "error":
                    yield _event(api_error(value, "messages").body())
                    return
                elif kind == "done":
                    break
                event = await job.next_event()
            usage, finish, extra = _outcome(value)
            yield self._chunk({}, finish)
            if extra:
                yield _event({**self._base("chat.completion.chunk"), "choices": [], **extra})
            if include_usage:
                yield _event({**self._base("chat.completion.chunk"), "choices": [], "usage": usage})
            yield "data: [DONE]\n\n"
        finally:
            job.cancel()  # no-op when the job is done; stops it when the client left


def api_error(exc: object, param: str | None) -> ApiError:
    """What a failed job tells its client: the user's mistake as a 400, a job cancelled
    before it ran as a 503, anything else (a bug) as a 500."""
    if isinstance(exc, GritdeskError):
        return from_gritdesk_error(exc, param)
    if isinstance(exc, JobCancelledError):
        return ApiError(
            503,
            "the request was cancelled before it ran (the server is stopping)",
            type="server_error",
            code="cancelled",
        )
    return ApiError(500, f"internal error: {type(exc).__name__}: {exc}", type="server_error")


def _outcome(value: object) -> tuple[dict[str, int], str, dict[str, object]]:
    """Usage, finish reason and extension fields of a finished chat or RAG job."""
    if isinstance(value, ChatOutcome):
        prompt, completion, finish, extra = (
            value.prompt_tokens,
            value.completion_tokens,
            value.finish_reason,
            {},
        )
    else:
        assert isinstance(value, Answer)
        t = value.timings
        prompt = t.prompt_tokens_computed + t.prompt_tokens_reused
        completion = t.generated_tokens
        finish = openai_finish_reason(value.finish_reason)
        shown = value.as_json()
        extra = {key: shown[key] for key in RAG_FIELDS}
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    return usage, finish or "stop", extra


def _event(data: dict[str, object]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _encode(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":  # little-endian float32, as OpenAI sends it
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.astype(np.float32).tolist()


async def _cancel_on_disconnect(request: Request, job: Job) -> None:
    """Cancel `job` as soon as the client closes the connection (runs until cancelled)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            job.cancel()
            return
