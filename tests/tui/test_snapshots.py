"""How the main screens look (pytest-textual-snapshot). Deterministic by construction: a
scripted backend (fixed answer, sources and timings), a fixed index, a fixed terminal size,
a fixed clock and time zone, no cursor blink, no temporary paths on screen.

After an intended change of looks: `pytest tests/tui/test_snapshots.py --snapshot-update`,
then review the SVGs in tests/tui/__snapshots__ before committing them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from gritdesk.store.model_record import EmptyIndexError
from gritdesk.tui.screens.conversations_screen import ConversationsScreen
from gritdesk.tui.screens.help_screen import HelpScreen
from gritdesk.tui.screens.problem_screen import ProblemScreen

from .conftest import scripted_app, type_question, wait_until

SIZE = (110, 32)
NOON = 1_767_268_800.0  # 2026-01-01 12:00 UTC


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setattr("gritdesk.store.conversations.time.time", lambda: NOON)
    yield
    monkeypatch.undo()
    time.tzset()


async def answered(pilot: Pilot) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: app.backend is not None, what="the backend")
    await type_question(pilot, "How much is refunded for hotels?")
    await wait_until(pilot, lambda: not app.chat_screen.answering, what="the answer")
    await pilot.pause()


def test_chat_after_an_answer(snap_compare, scripted_db: Path) -> None:
    assert snap_compare(scripted_app(scripted_db), terminal_size=SIZE, run_before=answered)


def test_help_screen(snap_compare, scripted_db: Path) -> None:
    async def open_help(pilot: Pilot) -> None:
        await wait_until(pilot, lambda: pilot.app.backend is not None)
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))
        await pilot.pause()

    assert snap_compare(scripted_app(scripted_db), terminal_size=SIZE, run_before=open_help)


def test_conversations_screen(snap_compare, scripted_db: Path) -> None:
    async def open_list(pilot: Pilot) -> None:
        await answered(pilot)
        await pilot.press("ctrl+n")
        await type_question(pilot, "And for meals?")
        await wait_until(pilot, lambda: not pilot.app.chat_screen.answering)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConversationsScreen))
        await wait_until(pilot, lambda: len(pilot.app.screen.conversations) == 2)
        await pilot.pause()

    assert snap_compare(scripted_app(scripted_db), terminal_size=SIZE, run_before=open_list)


def test_empty_index_screen(snap_compare, tmp_path: Path) -> None:
    def empty() -> None:
        raise EmptyIndexError("nothing has been indexed into index.db yet: run gritdesk index PATH")

    async def problem_shown(pilot: Pilot) -> None:
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ProblemScreen))
        await pilot.pause()

    app = scripted_app(tmp_path / "index.db", check=empty)
    assert snap_compare(app, terminal_size=SIZE, run_before=problem_shown)
