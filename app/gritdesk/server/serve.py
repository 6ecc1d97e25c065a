"""`gritdesk serve`: load the model once, then serve the API with uvicorn until Ctrl-C.

The socket is bound here (so `--port 0` picks a free port and the line printed on stderr
names the real one) and only after the model has loaded: a connection accepted is a
request the engine can serve.
"""

from __future__ import annotations

import socket
import sys

import uvicorn

from gritdesk.server.app import create_app
from gritdesk.server.engine_worker import EngineWorker
from gritdesk.server.settings import check_bind
from gritdesk.session import Session


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        from gritdesk.errors import GritdeskError

        raise GritdeskError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def run_serve(session: Session) -> None:
    settings = check_bind(session.settings.serve)
    worker = EngineWorker(session, settings.queue_size, settings.batch_jobs)
    app = create_app(worker, settings)
    sock = bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    for notice in session.notices:
        print(f"gritdesk: note: {notice}", file=sys.stderr)
    print(
        f"gritdesk: serving {session.engine.path.name if session.engine else '?'} "
        f"on http://{shown}:{port}/v1" + (" (API key required)" if settings.api_key else ""),
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        session.close()
