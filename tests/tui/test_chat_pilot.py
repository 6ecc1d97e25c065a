"""The chat app on the tiny model (real retrieval, KV caches and generation): answers
stream in with their sources, Esc stops at once, conversations survive a restart."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from gritdesk.rag.answer import AskOptions
from gritdesk.rag.layouts import CacheMode
from gritdesk.runtime.engine import GenerationOptions
from gritdesk.runtime.gguf_check import check_gguf
from gritdesk.session import kv_cache_directory
from gritdesk.settings import Settings
from gritdesk.store.connection import open_database
from gritdesk.store.conversations import latest_conversation, load_messages
from gritdesk.tui.app import GritdeskApp
from gritdesk.tui.screens.conversations_screen import ConversationsScreen
from gritdesk.tui.screens.problem_screen import ProblemScreen
from gritdesk.tui.widgets.conversation_view import AnswerMessage, QuestionMessage
from gritdesk.tui.widgets.question_input import QuestionInput
from gritdesk.tui.widgets.sources_panel import SourcesPanel

from .conftest import (
    ANSWER_FILE,
    CORPUS,
    QUESTION,
    build_index,
    run_async,
    tiny_app,
    type_question,
    wait_until,
)


def stored(db_path: Path) -> tuple[str, list]:
    db = open_database(db_path)
    try:
        conversation = latest_conversation(db)
        assert conversation is not None, "no conversation was stored"
        return conversation.title, load_messages(db, conversation.id)
    finally:
        db.close()


@run_async
async def test_answer_streams_in_with_its_sources(
    chat_db: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[tuple[float, str]] = []  # (when, text on screen) after each streamed piece
    write = AnswerMessage.write

    async def recording_write(self: AnswerMessage, piece: str) -> None:
        await write(self, piece)
        shown.append((time.perf_counter(), self.text))

    monkeypatch.setattr(AnswerMessage, "write", recording_write)
    # enough tokens to span several 1/30 s batching periods even on an idle fast machine
    app = tiny_app(chat_db, tiny_model_path, max_tokens=256)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.chat_screen
        await wait_until(pilot, lambda: app.backend is not None, what="the model to load")
        await type_question(pilot, QUESTION, key_by_key=True)
        answer = screen.query(AnswerMessage).last()
        await wait_until(pilot, lambda: not screen.answering, what="the answer to finish")
        finished = time.perf_counter()
        await wait_until(pilot, lambda: bool(answer.border_subtitle), what="its end drawn")

        # streamed: many partial texts, each extending the last, the first well before the end
        assert len(shown) > 3, "the answer did not arrive piece by piece"
        assert all(b.startswith(a) and b != a for (_, a), (_, b) in itertools.pairwise(shown))
        assert shown[-1][1] == answer.text and answer.text.strip()
        assert finished - shown[0][0] > 0.05
        assert answer.source.strip() == answer.text.strip()  # the Markdown shows all of it
        assert answer.border_subtitle == "stopped at the token limit"

        panel = screen.query_one(SourcesPanel)
        assert panel.sources, "no sources listed"
        assert panel.sources[0].display_path.endswith(ANSWER_FILE)
        assert all(s.kv == "cached" for s in panel.sources)  # the index saved their KV
        lines = (CORPUS / ANSWER_FILE).read_text().splitlines()
        first = panel.sources[0]
        assert "140 euros a night" in "\n".join(lines[first.start_line - 1 : first.end_line])
        status = str(screen.status.render())
        assert "tok/s" in status and f"KV hit {len(panel.sources)}/{len(panel.sources)}" in status
        assert "gritdesk-synthetic-tiny" in status and "chunks/5 files" in status

        await app.chat_store.flush()
        title, messages = stored(chat_db)
        assert title.startswith("Hotel costs are refunded")
        assert [m.role for m in messages] == ["user", "assistant"]
        assert messages[0].content == QUESTION
        assert messages[1].content == answer.text
        assert [s.location for s in messages[1].sources] == [s.location for s in panel.sources]


@run_async
async def test_escape_stops_the_answer_at_once_keeping_its_text(
    chat_db: Path, tiny_model_path: Path
) -> None:
    # 1500 tokens take tens of seconds on the tiny model: Esc lands mid-answer
    # (no first-line stop: the tiny model's first line may end before Esc)
    app = tiny_app(chat_db, tiny_model_path, max_tokens=1500, first_line=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.chat_screen
        await wait_until(pilot, lambda: app.backend is not None, what="the model to load")
        await type_question(pilot, QUESTION)
        answer = screen.query(AnswerMessage).last()
        await wait_until(pilot, lambda: len(answer.text) > 10, what="the first tokens")

        await pilot.press("escape")
        assert not screen.answering  # stopped on this side before the worker even noticed
        kept = answer.text
        assert kept and answer.border_subtitle == "stopped"

        # the worker stops at its next token, far from the 1500-token limit
        await asyncio.wait_for(app.workers.wait_for_complete(), timeout=15)
        await pilot.pause(0.2)
        assert answer.text == kept, "text arrived after Esc"
        assert screen.query_one("#question").has_focus

        await app.chat_store.flush()
        _, messages = stored(chat_db)
        assert messages[-1].content == kept
        assert messages[-1].finish_reason == "cancelled"

        # the app answers the next question as usual, with the stopped turn as history
        app.ask_options = replace(app.ask_options, generation=GenerationOptions(max_tokens=8))
        await type_question(pilot, "And in North America?")
        await wait_until(pilot, lambda: not screen.answering, what="the second answer")
        assert len(screen.history) == 2
        assert screen.history[0].assistant == kept


@run_async
async def test_conversation_is_still_there_after_a_restart(
    chat_db: Path, tiny_model_path: Path
) -> None:
    first = tiny_app(chat_db, tiny_model_path, max_tokens=12)
    async with first.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: first.backend is not None, what="the model to load")
        await type_question(pilot, QUESTION)
        await wait_until(pilot, lambda: not first.chat_screen.answering, what="the answer")
        answer_text = first.chat_screen.query(AnswerMessage).last().text
        sources = [s.location for s in first.chat_screen.query_one(SourcesPanel).sources]

    again = tiny_app(chat_db, tiny_model_path, max_tokens=8)
    async with again.run_test(size=(120, 36)) as pilot:
        screen = again.chat_screen
        await wait_until(pilot, lambda: bool(screen.query(AnswerMessage)), what="the history")
        assert [q.text for q in screen.query(QuestionMessage)] == [QUESTION]
        assert [a.text for a in screen.query(AnswerMessage)] == [answer_text]
        assert [s.location for s in screen.query_one(SourcesPanel).sources] == sources
        assert screen.history[0].user == QUESTION

        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(again.screen, ConversationsScreen))
        listing = again.screen
        await wait_until(pilot, lambda: bool(listing.conversations))
        assert [c.title for c in listing.conversations] == [screen.conversation.title]
        await pilot.press("escape")

        # a follow-up sees the first turn and retrieves with both questions
        await wait_until(pilot, lambda: again.backend is not None, what="the model to load")
        await type_question(pilot, "And in North America?")
        await wait_until(pilot, lambda: not screen.answering, what="the follow-up")
        assert len(screen.history) == 2


@run_async
async def test_empty_index_offers_to_index_a_folder(tmp_path: Path, tiny_model_path: Path) -> None:
    app = tiny_app(tmp_path / "empty.db", tiny_model_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ProblemScreen), what="problem")
        assert app.screen.problem.kind == "empty"
        await pilot.press("i")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "TextPromptScreen")
        prompt = app.screen.query_one("#prompt-input")
        prompt.value = str(CORPUS)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is app.chat_screen, what="the chat screen")
        assert not app.indexing
        notes = [n.message for n in app._notifications]
        assert any(n.startswith("indexed 5,") for n in notes), notes
        status = app.chat_screen.status
        await wait_until(pilot, lambda: "chunks/5 files" in str(status.render()))
        assert status.activity == "ready"

        # the palette re-indexes a known folder: nothing changed, nothing re-embedded
        await pilot.press("ctrl+p")
        await pilot.press(*"re-index demo_corpus")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: any("unchanged 5" in n.message for n in app._notifications),
            timeout=120,
            what="the re-index report",
        )


@run_async
async def test_index_of_another_model_is_explained(chat_db: Path, tiny_b_model_path: Path) -> None:
    app = tiny_app(chat_db, tiny_b_model_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ProblemScreen), what="problem")
        problem = app.screen.problem
        assert problem.kind == "mismatch"
        assert "--rebuild" in problem.detail and str(tiny_b_model_path) in problem.detail


@pytest.mark.parametrize("model", ["missing.gguf", "not-a-model.gguf"])
@run_async
async def test_unloadable_model_is_a_problem_screen(tmp_path: Path, model: str) -> None:
    path = tmp_path / model
    if model == "not-a-model.gguf":
        path.write_bytes(b"this is not a gguf file")
    app = tiny_app(tmp_path / "index.db", path)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ProblemScreen), what="problem")
        assert app.screen.problem.kind == "model"
        assert str(path) in app.screen.problem.detail
        await pilot.press("ctrl+q")
    assert app.return_code in (0, None)


LOCK_HOLDER = """
import sys, time, apsw
db = apsw.Connection(sys.argv[1])
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO meta (key, value) VALUES ('another-process', 'indexing')")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


@run_async
async def test_chat_keeps_working_while_another_process_writes(
    chat_db: Path, tiny_model_path: Path
) -> None:
    """An indexer in another process holds the write lock: retrieval still reads (WAL), the
    UI keeps taking keys, and the history is written once the lock is free."""
    app = tiny_app(chat_db, tiny_model_path, max_tokens=8)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.chat_screen
        await wait_until(pilot, lambda: app.backend is not None, what="the model to load")
        holder = subprocess.Popen(
            [sys.executable, "-c", LOCK_HOLDER, str(chat_db), "4"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            started = time.monotonic()
            await type_question(pilot, QUESTION)
            await pilot.press(*"next")  # the UI answers keys while the database is locked
            box = screen.query_one(QuestionInput)
            await wait_until(pilot, lambda: box.text == "next", timeout=2, what="typed keys")
            assert time.monotonic() - started < 3.5 and holder.poll() is None
            await wait_until(pilot, lambda: not screen.answering, what="the answer")
        finally:
            holder.wait(timeout=30)
        await app.chat_store.flush()
        _, messages = stored(chat_db)
        assert [m.role for m in messages] == ["user", "assistant"]
        assert messages[1].content == screen.query(AnswerMessage).last().text


@run_async
async def test_pair_mode_answers_with_the_chat_model_computing_chunk_kv(
    tmp_path: Path, tiny_model_path: Path, tiny_b_model_path: Path
) -> None:
    db_path = tmp_path / "pair.db"
    build_index(db_path, tiny_b_model_path)  # tiny-b embeds, tiny answers
    app = GritdeskApp(
        Settings(db=db_path, model=tiny_b_model_path, chat_model=tiny_model_path),
        ask_options=AskOptions(k=2, generation=GenerationOptions(max_tokens=8)),
        cursor_blink=False,
    )
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.chat_screen
        await wait_until(pilot, lambda: app.backend is not None, what="the models to load")
        assert app.backend.pair_mode and app.cache_mode is CacheMode.OFF
        assert any("pair mode" in n.message for n in app._notifications)
        app.set_cache_mode(CacheMode.DOC)  # chunk KV computed by the chat model on first use
        assert app.cache_mode is CacheMode.DOC
        await type_question(pilot, QUESTION)
        await wait_until(pilot, lambda: not screen.answering, what="the answer")
        assert screen.query(AnswerMessage).last().text
        # the index holds no KV of the chat model: it computes each chunk's on first use (the
        # tiny model, < 1B params, reads focused sentences: a source it reads none of stays
        # "fresh", as text never prefilled)
        kv = [s.kv for s in screen.query_one(SourcesPanel).sources]
        assert "computed" in kv and set(kv) <= {"computed", "fresh"}
        label = str(app.backend.model)
        assert label.startswith(check_gguf(tiny_model_path).name)
        assert label.endswith(f"passages: {check_gguf(tiny_b_model_path).name}")
    shutil.rmtree(kv_cache_directory(db_path), ignore_errors=True)


@run_async
async def test_embedding_only_recipe_without_a_chat_model_is_explained(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    db_path = tmp_path / "e5.db"
    build_index(db_path, tiny_model_path, recipe="e5-mistral")
    app = GritdeskApp(Settings(db=db_path, model=tiny_model_path), cursor_blink=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ProblemScreen), what="problem")
        assert app.screen.problem.title == "This model only embeds"
        assert "--chat-model" in app.screen.problem.detail
    shutil.rmtree(kv_cache_directory(db_path), ignore_errors=True)
