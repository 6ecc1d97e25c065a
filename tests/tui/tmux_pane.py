"""Drive a program in a detached tmux session: type into it, read its screen (as text, or
as cells that know whether they are drawn in reverse video and on which background)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

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

    def styled_screen(self) -> str:
        """The screen with its SGR escape sequences (read it with `screen_cells`)."""
        return self._run("capture-pane", "-p", "-e", "-t", self.target)

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


def answer_lines(screen: str) -> list[str]:
    """The text inside the last answer box of the chat, read upwards from its bottom border
    ("│ ╰"): a long answer's top may have scrolled out of view."""
    lines = screen.splitlines()
    bottoms = [i for i, line in enumerate(lines) if line.startswith("│ ╰")]
    assert bottoms, f"no answer box on the screen:\n{screen}"
    body = []
    for line in reversed(lines[: bottoms[-1]]):
        if not line.startswith("│ │"):
            break
        body.append(line[3:].split("│")[0].strip())
    return [text for text in reversed(body) if text]


@dataclass(frozen=True)
class Cell:
    char: str  # "" for the right half of a wide character
    reverse: bool
    background: str = ""  # its SGR background ("48;5;23", "41"); "" for the terminal's own


_ESCAPE = re.compile(r"\x1b\[([0-9;:]*)([A-Za-z])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def _style_after(params: str, reverse: bool, background: str) -> tuple[bool, str]:
    """Reverse video and background after one SGR sequence (7 sets reverse, 27 clears it;
    48 and 40-47, 100-107 set the background, 49 clears it; 0 clears both; the numbers of a
    38/48/58 colour are not attributes)."""
    codes = [int(p) if p else 0 for p in params.replace(":", ";").split(";")]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code in (38, 48, 58):
            end = i + (3 if i + 1 < len(codes) and codes[i + 1] == 5 else 5)
            if code == 48:
                background = ";".join(str(c) for c in codes[i:end])
            i = end
            continue
        if code == 0:
            reverse, background = False, ""
        elif code == 27:
            reverse = False
        elif code == 7:
            reverse = True
        elif code == 49:
            background = ""
        elif 40 <= code <= 47 or 100 <= code <= 107:
            background = str(code)
        i += 1
    return reverse, background


def screen_cells(styled: str) -> list[list[Cell]]:
    """`capture-pane -e` output as rows of cells, one per terminal column (tmux carries
    the attributes from one line to the next)."""
    rows: list[list[Cell]] = []
    reverse, background = False, ""
    for line in styled.splitlines():
        row: list[Cell] = []
        at = 0
        for match in _ESCAPE.finditer(line + "\x1b[z"):  # a sentinel ends the last text
            for char in line[at : match.start()]:
                row.append(Cell(char, reverse, background))
                if unicodedata.east_asian_width(char) in "WF":
                    row.append(Cell("", reverse, background))
            if match.group(2) == "m":
                reverse, background = _style_after(match.group(1), reverse, background)
            at = match.end()
        rows.append(row)
    return rows
