"""Where unexpected errors of the chat app go: a file, since a traceback on the terminal
would break the screen. The UI shows a one-line message naming this file."""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from gritdesk.paths import cache_dir


def error_log_path() -> Path:
    return cache_dir() / "chat-errors.log"


def log_unexpected(what: str, error: BaseException) -> Path:
    """Append `error`'s traceback to the log; returns the log's path."""
    path = error_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {what}\n")
            log.write("".join(traceback.format_exception(error)))
    except OSError:
        pass
    return path
