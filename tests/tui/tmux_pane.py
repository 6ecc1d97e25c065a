"""Drive a program in a detached tmux session: type into it, read its screen."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping

INSTALL_TMUX = (
    "tmux is not installed, and the chat's end-to-end test drives the real `gritdesk chat` "
    "inside tmux: install it (apt-get install tmux, dnf install tmux, brew install tmux)"
)


def tmux_binary() -> str | None:
    return shutil.which("tmux")


class TmuxPane:
    """One tmux server of our own (its own socket), one session, one pane."""

    def __init__(self, tmux: str) -> None:
        self.tmux = tmux
        self.socket = f"gritdesk-test-{uuid.uuid4().hex[:12]}"
        self.target = "chat"

    def _run(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        proc = subprocess.run(
            [self.tmux, "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            env=dict(env) if env is not None else None,
            timeout=30,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def start(self, command: str, *, width: int, height: int, env: Mapping[str, str]) -> None:
        self._run(
            "new-session", "-d", "-s", self.target, "-x", str(width), "-y", str(height),
            command, env=env,
        )  # fmt: skip

    def type(self, text: str) -> None:
        self._run("send-keys", "-t", self.target, "-l", text)

    def press(self, *keys: str) -> None:
        self._run("send-keys", "-t", self.target, *keys)

    def screen(self) -> str:
        return self._run("capture-pane", "-p", "-t", self.target)

    def show(self, fmt: str) -> str:
        return self._run("display-message", "-p", "-t", self.target, fmt).strip()

    def wait_for(self, check: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if check(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{screen}")
            time.sleep(0.1)

    def kill(self) -> None:
        subprocess.run(
            [self.tmux, "-L", self.socket, "kill-server"], capture_output=True, timeout=30
        )
