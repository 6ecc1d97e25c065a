"""What the server adds to `gritdesk.settings.ServeSettings`: the model id of answers from
the index, and the refusal of an unsafe bind (checked when serving starts)."""

from __future__ import annotations

import ipaddress
import socket

from gritdesk.errors import GritdeskError
from gritdesk.settings import API_KEY_ENV, ServeSettings

RAG_MODEL_ID = "gritdesk-rag"

__all__ = ["RAG_MODEL_ID", "ServeSettings", "UnsafeBindError", "check_bind", "is_loopback"]


class UnsafeBindError(GritdeskError):
    """A non-loopback address without an API key: the index would be open to the network."""


def check_bind(settings: ServeSettings) -> ServeSettings:
    """Refuse to listen beyond loopback without an API key."""
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
