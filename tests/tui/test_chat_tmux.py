"""The real `gritdesk chat` in a real terminal (tmux): it starts, answers a typed question
with its sources on screen, and quits with the terminal as it was."""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ANSWER_FILE, QUESTION
from .tmux_pane import INSTALL_TMUX, TmuxPane, answer_lines, tmux_binary

WIDTH, HEIGHT = 120, 36


@pytest.fixture
def pane() -> Iterator[TmuxPane]:
    tmux = tmux_binary()
    if tmux is None:
        pytest.fail(INSTALL_TMUX)
    pane = TmuxPane(tmux)
    yield pane
    pane.kill()


def stty_flags(screen: str) -> set[str]:
    return set(re.split(r"[\s;]+", screen))


def test_real_chat_answers_in_a_terminal_and_restores_it(
    pane: TmuxPane, chat_db: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    gritdesk = f"{shlex.quote(sys.executable)} -c 'from gritdesk.cli import main; main()'"
    chat = f"{gritdesk} chat --db {shlex.quote(str(chat_db))} --model {shlex.quote(str(tiny_model_path))} --ctx 2048"  # noqa: E501
    script = f"printf 'BEFORE-CHAT\\n'; {chat}; echo CHAT-EXIT=$?; stty -a; exec sleep 600"
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(WIDTH), "LINES": str(HEIGHT)}
    pane.start(f"sh -c {shlex.quote(script)}", width=WIDTH, height=HEIGHT, env=env)

    pane.wait_for(lambda s: " ready │" in s, 120, "the model to load")
    assert pane.show("#{alternate_on}") == "1"  # a full-screen app
    pane.type(QUESTION)
    pane.press("Enter")
    screen = pane.wait_for(
        lambda s: "tok/s" in s and ANSWER_FILE in s, 180, "an answer and its sources"
    )
    assert answer_lines(screen), f"the answer box is empty:\n{screen}"
    assert "KV cached" in screen and "[1] demo_corpus/" in screen
    assert "╭─ Hotel costs are refunded up to" in screen  # the conversation, titled by it

    pane.press("C-q")
    # the app's exit status, then `stty -a`'s report (it names the columns) of the terminal
    screen = pane.wait_for(
        lambda s: "CHAT-EXIT=" in s and "columns" in s, 60, "the app to exit and stty to report"
    )
    assert "CHAT-EXIT=0" in screen
    assert "BEFORE-CHAT" in screen  # the screen from before the app is back
    assert "Traceback" not in screen
    assert pane.show("#{alternate_on} #{mouse_any_flag} #{cursor_flag}") == "0 0 1"
    flags = stty_flags(screen)
    assert {"icanon", "echo", "isig"} <= flags, f"terminal left in raw mode:\n{screen}"
