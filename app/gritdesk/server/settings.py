"""What `gritdesk serve` and `gritdesk mcp` are told beyond the index and model: where to
listen, the API key, and the per-request limits. Every default is here, in one place.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass

from gritdesk.errors import GritdeskError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
API_KEY_ENV = "GRITDESK_API_KEY"  # keeps the key out of `ps` listings
RAG_MODEL_ID = "gritdesk-rag"


class UnsafeBindError(GritdeskError):
    """A non-loopback address without an API key: the index would be open to the network."""


@dataclass(frozen=True)
class ServeSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = None
    queue_size: int = 64  # jobs waiting for the engine; one more gets 503 + Retry-After
    retry_after_s: int = 1
    max_body_bytes: int = 4 * 2**20
    max_input_tokens: int | None = None  # a chat prompt or embedding text; None: the context
    max_tokens: int | None = None  # the largest max_tokens a request may ask for; None: context
    default_max_tokens: int = 512  # when a chat request names none
    max_embedding_inputs: int = 2048  # texts in one /v1/embeddings request (OpenAI's limit)
    max_rerank_documents: int = 256
    batch_jobs: int = 64  # queued embedding requests merged into one Engine.embed at most


def serve_settings(
    *,
    host: str | None = None,
    port: int | None = None,
    api_key: str | None = None,
    queue_size: int | None = None,
    max_body_bytes: int | None = None,
    max_input_tokens: int | None = None,
    max_tokens: int | None = None,
) -> ServeSettings:
    """The flags over the defaults; the key also from GRITDESK_API_KEY. Refuses an unsafe bind."""
    given = {
        "host": host,
        "port": port,
        "api_key": api_key or os.environ.get(API_KEY_ENV) or None,
        "queue_size": queue_size,
        "max_body_bytes": max_body_bytes,
        "max_input_tokens": max_input_tokens,
        "max_tokens": max_tokens,
    }
    settings = ServeSettings(**{k: v for k, v in given.items() if v is not None})  # type: ignore[arg-type]
    for name in ("queue_size", "max_body_bytes", "max_input_tokens", "max_tokens"):
        value = getattr(settings, name)
        if value is not None and value < 1:
            raise GritdeskError(f"--{name.replace('_', '-')} {value}: must be at least 1")
    if settings.api_key is None and not is_loopback(settings.host):
        raise UnsafeBindError(
            f"refusing to listen on {settings.host} without an API key: anyone who can reach "
            "this address could read your indexed files through the API. Pass --api-key KEY "
            f"(or set {API_KEY_ENV}), or listen on 127.0.0.1"
        )
    return settings


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback address (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)
