"""Request bodies of the OpenAI-compatible endpoints, validated with pydantic.

Types are strict (a string where a number belongs is a 400, not a guess); fields OpenAI
clients send that do not change the result (`user`, `logit_bias` left empty, ...) are
ignored. gritdesk's own request fields are documented in the README (`input_type`,
`instruction`, the `gritdesk` object of a chat request).
"""

from __future__ import annotations

import json
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import ClientDisconnect, Request

from gritdesk.rag.ask_defaults import MAX_K
from gritdesk.server.errors import ApiError


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


T = TypeVar("T", bound=Body)


class EmbeddingsRequest(Body):
    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    # gritdesk: query or document format (GritLM embeds them differently); a query takes an
    # instruction, by default the recipe's retrieval instruction
    input_type: Literal["query", "document"] = "document"
    instruction: str | None = None


class TextPart(Body):
    type: Literal["text"]
    text: str


class Message(Body):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class RagOptions(Body):
    """The `gritdesk` object of a chat request to the `gritdesk-rag` model."""

    # None: the answering service's default (rag/ask_defaults.py), as in every interface
    root: str | None = None  # answer only from files under this folder
    k: Annotated[int, Field(ge=1, le=MAX_K)] | None = None
    rerank: bool | None = None
    cache: Literal["off", "doc", "query", "query-doc", "doc-query"] | None = None


class StreamOptions(Body):
    include_usage: bool = False


class ChatRequest(Body):
    model: str
    messages: Annotated[list[Message], Field(min_length=1)]
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 0.0
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    seed: int | None = None
    n: Annotated[int, Field(ge=1, le=1)] = 1
    gritdesk: RagOptions | None = None

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class RerankDocument(Body):
    text: str


class RerankRequest(Body):
    """llama.cpp's /v1/rerank, Jina's and Cohere's shape: documents as strings or {text}."""

    model: str | None = None
    query: str
    documents: Annotated[list[str | RerankDocument], Field(min_length=1)]
    top_n: Annotated[int, Field(ge=1)] | None = None
    return_documents: bool = False

    def texts(self) -> list[str]:
        return [d if isinstance(d, str) else d.text for d in self.documents]


async def read_body(request: Request, model: type[T], max_bytes: int) -> T:
    """The request body, at most `max_bytes` (counted as it arrives), as JSON, validated."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise body_too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise body_too_large(max_bytes)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(400, "the client went away while sending the body") from None
    try:
        data = json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object", code="invalid_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def body_too_large(max_bytes: int) -> ApiError:
    return ApiError(413, f"the body is larger than {max_bytes} bytes", code="request_too_large")


def validation_error(exc: ValidationError) -> ApiError:
    """The first problem, named by its path in the body (`messages.0.role`)."""
    first = exc.errors()[0]
    param = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function"))
    # a union reports each alternative; the path up to the union is what the user wrote
    param = param.split(".str", 1)[0].split(".list[", 1)[0]
    return ApiError(
        400,
        f"{param or 'body'}: {first['msg']} (got {first.get('input')!r:.80})",
        param=param or None,
        code="invalid_value",
    )
