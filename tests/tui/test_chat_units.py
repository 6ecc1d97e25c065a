"""The chat app's small parts: turns, retrieval query, trimming to fit, display paths, code
blocks, batching of streamed pieces."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from gritdesk.rag.answer import AskOptions, PreparedAnswer
from gritdesk.rag.ask_service import earlier_questions, fit_history
from gritdesk.runtime.engine import ChatTurn
from gritdesk.runtime.errors import InputTooLongError
from gritdesk.store.citations import path_in_root as display_path
from gritdesk.store.conversations import StoredMessage
from gritdesk.tui.dialogue import turns_from_messages
from gritdesk.tui.markdown_code import code_blocks, last_code_block
from gritdesk.tui.screens.chat_screen import batched
from gritdesk.tui.thread_priority import ENGINE_NICENESS, lower_this_thread


def test_turns_pair_questions_with_answers_and_skip_failed_answers() -> None:
    messages = [
        StoredMessage(1, "user", "q1"),
        StoredMessage(2, "assistant", "a1", finish_reason="stop"),
        StoredMessage(3, "user", "q2"),
        StoredMessage(4, "assistant", "", finish_reason="error"),
        StoredMessage(5, "user", "q3"),
        StoredMessage(6, "assistant", "a3 (cut)", finish_reason="cancelled"),
    ]
    assert turns_from_messages(messages) == [
        ChatTurn("q1", "a1"),
        ChatTurn("q2", None),
        ChatTurn("q3", "a3 (cut)"),
    ]


def test_retrieval_uses_the_last_two_questions() -> None:
    history = [ChatTurn("q1", "a"), ChatTurn("q2", "a"), ChatTurn("q3", "a")]
    assert earlier_questions(history) == ["q2", "q3"]
    assert earlier_questions([]) == []


def tight_prepare(room: int, seen: list[list[ChatTurn]]):
    """A prepare that fits at most `room` turns of history."""

    def prepare(turns: list[ChatTurn]) -> PreparedAnswer:
        seen.append(list(turns))
        if len(turns) > room:
            raise InputTooLongError("the question", 5000, 4000)
        return PreparedAnswer("new", AskOptions(), [], turns)

    return prepare


def test_oldest_turns_are_dropped_until_the_question_fits() -> None:
    history = [ChatTurn(f"q{i}", f"a{i}") for i in range(6)] + [ChatTurn("failed", None)]
    seen: list[list[ChatTurn]] = []
    prepared = fit_history(tight_prepare(2, seen), history)
    assert [t.user for t in prepared.history] == ["q4", "q5"]
    assert "left out the 2 oldest turn(s)" in prepared.notices[0]  # 4 at most were tried
    assert [t.user for t in seen[0]] == ["q2", "q3", "q4", "q5"]
    assert earlier_questions(history) == ["q5", "failed"]

    with pytest.raises(InputTooLongError):
        fit_history(tight_prepare(-1, []), history)


def test_display_path_is_relative_to_the_deepest_indexed_folder() -> None:
    roots = ["/home/me/notes", "/home/me/notes/work"]
    assert display_path("/home/me/notes/work/a.md", roots) == "work/a.md"
    assert display_path("/home/me/notes/b.md", roots) == "notes/b.md"
    assert display_path("/elsewhere/c.md", roots) == "/elsewhere/c.md"


def test_code_blocks_are_found_between_fences() -> None:
    text = "intro\n```python\nprint(1)\n```\nmid\n~~~\nls -l\n~~~\n```\nunclosed"
    assert code_blocks(text) == ["print(1)\n", "ls -l\n"]
    assert last_code_block(text) == "ls -l\n"
    assert last_code_block("no code") is None


def test_streamed_pieces_are_batched_but_the_first_goes_at_once() -> None:
    assert [text for text, _ in batched(["a", "b", "c"], every_s=60)] == ["a", "bc"]
    assert [text for text, _ in batched(["a", "b", "c"], every_s=0)] == ["a", "b", "c"]
    assert list(batched([], every_s=0)) == []


def test_engine_threads_run_below_the_ui_priority() -> None:
    """On Linux; elsewhere lowering is a no-op and the priorities stay as they were."""
    base = os.getpriority(os.PRIO_PROCESS, 0)
    expected = ENGINE_NICENESS if sys.platform == "linux" else base
    seen: list[int] = []

    def worker() -> None:
        lower_this_thread()
        child = threading.Thread(target=lambda: seen.append(os.getpriority(os.PRIO_PROCESS, 0)))
        child.start()
        child.join()
        seen.append(os.getpriority(os.PRIO_PROCESS, 0))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [expected, expected]  # and threads it starts inherit it
    assert os.getpriority(os.PRIO_PROCESS, 0) == base  # the calling (UI) thread's is untouched
