"""Chat app behaviour that needs no model: copying, the palette, managing conversations,
failures shown as notifications. Driven by a scripted backend."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import OptionList, Static

from gritdesk.errors import GritdeskError
from gritdesk.rag.layouts import CacheMode
from gritdesk.store.connection import open_database
from gritdesk.store.conversations import list_conversations, load_messages
from gritdesk.tui.screens.conversations_screen import ConversationsScreen
from gritdesk.tui.screens.text_prompt_screen import TextPromptScreen
from gritdesk.tui.widgets.conversation_view import AnswerMessage
from gritdesk.tui.widgets.question_input import QuestionInput
from gritdesk.tui.widgets.sources_panel import SourcesPanel

from .conftest import run_async, scripted_app, type_question, wait_until
from .scripted_backend import ANSWER, ScriptedBackend, fill_index


async def ask(pilot, question: str) -> AnswerMessage:
    app = pilot.app
    await wait_until(pilot, lambda: app.backend is not None, what="the backend")
    await type_question(pilot, question)  # returns once the answer has started
    await wait_until(pilot, lambda: not app.chat_screen.answering, what="the answer")
    return app.chat_screen.query(AnswerMessage).last()


async def answer_under_way(pilot, question: str) -> AnswerMessage:
    """Ask `question` of a slow (delay_s) backend and return once 12 characters show."""
    app = pilot.app
    await wait_until(pilot, lambda: app.backend is not None)
    await type_question(pilot, question)
    answer = app.chat_screen.query(AnswerMessage).last()
    await wait_until(pilot, lambda: len(answer.text) >= 12)
    return answer


async def run_palette_command(pilot, command: str) -> None:
    """Open the palette (Ctrl+P), type `command`, let it search, run the first match."""
    await pilot.press("ctrl+p")
    await pilot.press(*command)
    await pilot.pause(0.3)  # the palette searches in the background
    await pilot.press("enter")


async def reply_to_prompt(pilot, text: str) -> None:
    """Wait for the text prompt, type `text` into it and accept it."""
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, TextPromptScreen))
    app.screen.query_one("#prompt-input").value = text
    await pilot.press("enter")


@run_async
async def test_copy_answer_and_code_block_to_the_clipboard(scripted_db: Path) -> None:
    app = scripted_app(scripted_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("ctrl+t")
        assert app.clipboard == ""  # nothing to copy yet: a warning, not a crash
        answer = await ask(pilot, "Hotel costs?")
        assert answer.text == ANSWER
        await pilot.press("ctrl+t")
        assert app.clipboard == ANSWER
        await pilot.press("ctrl+r")
        assert app.clipboard == "gritdesk ask 'travel receipts'\n"


@run_async
async def test_follow_up_sees_the_conversation_and_retrieves_with_it(scripted_db: Path) -> None:
    app = scripted_app(scripted_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await ask(pilot, "Hotel costs in Europe?")
        await ask(pilot, "And in Asia?")
        backend = app.backend
        assert isinstance(backend, ScriptedBackend)
        question, history, retrieval = backend.questions[-1]
        assert question == "And in Asia?"
        assert [(t.user, t.assistant) for t in history] == [("Hotel costs in Europe?", ANSWER)]
        assert retrieval == ["Hotel costs in Europe?"]
        await pilot.press("ctrl+n")
        await ask(pilot, "Something else")
        assert backend.questions[-1][1] == []  # a new chat starts without history


@run_async
async def test_palette_switches_the_cache_mode(scripted_db: Path) -> None:
    app = scripted_app(scripted_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: app.cache_mode is CacheMode.DOC, what="the default mode")
        await run_palette_command(pilot, "cache mode: off")
        await wait_until(pilot, lambda: app.ask_options.cache_mode is CacheMode.OFF)
        assert "cache off" in str(app.chat_screen.status.render())


@run_async
async def test_rename_delete_and_export_conversations(scripted_db: Path, tmp_path: Path) -> None:
    app = scripted_app(scripted_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await ask(pilot, "First question")
        await pilot.press("ctrl+n")
        await ask(pilot, "Second question")

        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        listing = app.screen
        await wait_until(pilot, lambda: len(listing.conversations) == 2)
        assert [c.title for c in listing.conversations] == ["Second question", "First question"]

        await pilot.press("r")
        await reply_to_prompt(pilot, "Renamed chat")
        await wait_until(pilot, lambda: listing.conversations[0].title == "Renamed chat")

        target = tmp_path / "export.md"
        await pilot.press("e")
        await reply_to_prompt(pilot, str(target))
        await wait_until(pilot, target.exists, what="the export")
        exported = target.read_text()
        assert exported.startswith("# Renamed chat\n")
        assert "## You\n\nSecond question" in exported and "**140 euros a night**" in exported
        assert "1. `corpus/travel-policy.md:8-13` (score 0.0328, KV cached)" in exported

        await wait_until(pilot, lambda: app.screen is listing)
        await pilot.press("down", "d")
        await pilot.press("y")
        await wait_until(pilot, lambda: len(listing.conversations) == 1)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.chat_screen)
        assert app.chat_screen.conversation.title == "Renamed chat"  # the current one, renamed

    db = open_database(scripted_db)
    assert [c.title for c in list_conversations(db)] == ["Renamed chat"]
    db.close()


@run_async
async def test_generation_failure_is_a_notification_not_a_crash(scripted_db: Path) -> None:
    app = scripted_app(scripted_db, fail_with=GritdeskError("llama_decode failed with code 1"))
    async with app.run_test(size=(120, 36)) as pilot:
        answer = await ask(pilot, "Hotel costs?")
        assert answer.has_class("-interrupted")
        assert "llama_decode failed" in answer.border_subtitle
        notes = [(n.title, n.message) for n in app._notifications]
        assert ("The answer failed", "llama_decode failed with code 1") in notes
        assert app.chat_screen.history == []  # a failed answer is not shown to the model
        app.backend.fail_with = None
        answer = await ask(pilot, "Hotel costs?")
        assert answer.text == ANSWER  # and the chat goes on
        backend = app.backend
    assert backend.closed  # quitting frees the model


@run_async
async def test_esc_stops_a_scripted_answer_and_stores_what_was_shown(scripted_db: Path) -> None:
    app = scripted_app(scripted_db, delay_s=0.05)
    async with app.run_test(size=(120, 36)) as pilot:
        answer = await answer_under_way(pilot, "Hotel costs?")
        await pilot.press("escape")
        kept = answer.text
        assert kept and ANSWER.startswith(kept) and kept != ANSWER
        await app.workers.wait_for_complete()
        await app.chat_store.flush()
        assert answer.text == kept


@run_async
async def test_ctrl_j_starts_a_new_line_and_enter_sends_both(scripted_db: Path) -> None:
    app = scripted_app(scripted_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: app.backend is not None)
        await pilot.press(*"first line", "ctrl+j", *"second line")
        assert app.chat_screen.query_one(QuestionInput).text == "first line\nsecond line"
        await pilot.press("enter")
        await wait_until(pilot, lambda: not app.chat_screen.answering)
        assert app.backend.questions[-1][0] == "first line\nsecond line"
        assert app.chat_screen.query_one(QuestionInput).text == ""


@run_async
async def test_choosing_a_source_shows_its_chunk(scripted_db: Path) -> None:
    app = scripted_app(scripted_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await ask(pilot, "Hotel costs?")
        chunk = app.chat_screen.query_one("#chunk-text", Static)
        assert "140 euros a night in Europe" in str(chunk.render())
        app.chat_screen.query_one("#source-list", OptionList).focus()
        await pilot.press("down")
        assert "Your first week" in str(chunk.render())
        await pilot.press("enter")  # and Enter moves into the text, to scroll it
        assert app.chat_screen.query_one("#chunk-view").has_focus


@run_async
async def test_evidence_is_highlighted_and_unfound_facts_are_said(scripted_db: Path) -> None:
    sentence = "Your first week: laptop, accounts, travel card."
    app = scripted_app(scripted_db, evidence=[(2, sentence)], not_found=["12.50"])
    async with app.run_test(size=(120, 36)) as pilot:
        await ask(pilot, "What happens in the first week?")
        panel = app.chat_screen.query_one(SourcesPanel)
        await wait_until(pilot, lambda: bool(panel.evidence), what="the evidence")
        options = panel.query_one("#source-list", OptionList)
        assert options.highlighted == 1  # the source that holds the evidence is shown
        assert "evidence" in str(options.get_option_at_index(1).prompt)
        assert "evidence" not in str(options.get_option_at_index(0).prompt)
        shown = panel.query_one("#chunk-text", Static).render()  # textual Content
        styled = [shown.plain[span.start : span.end] for span in shown.spans]  # type: ignore[union-attr]
        assert sentence in styled
        notes = [n.message for n in app._notifications]
        assert any("Not found in your files: 12.50" in n for n in notes)


@run_async
async def test_switching_database_shows_its_conversations(
    scripted_db: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other" / "index.db"
    other.parent.mkdir()
    fill_index(other)
    app = scripted_app(scripted_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await ask(pilot, "A question in the first index")
        await run_palette_command(pilot, "switch database")
        await reply_to_prompt(pilot, str(other))
        await wait_until(pilot, lambda: app.db_path == other and app.backend is not None)
        await wait_until(pilot, lambda: app.backend.db_path == other)
        assert app.chat_screen.conversation is None  # the other index has no conversations
        assert not app.chat_screen.query(AnswerMessage)
        await ask(pilot, "A question in the second index")
    for db_path, question in ((scripted_db, "first"), (other, "second")):
        db = open_database(db_path)
        assert [c.title for c in list_conversations(db)] == [f"A question in the {question} index"]
        db.close()


@run_async
async def test_quitting_mid_answer_keeps_what_was_shown(scripted_db: Path) -> None:
    app = scripted_app(scripted_db, delay_s=0.05)
    async with app.run_test(size=(120, 36)) as pilot:
        await answer_under_way(pilot, "Hotel costs?")
        await pilot.press("ctrl+q")
    db = open_database(scripted_db)
    conversation = list_conversations(db)[0]
    messages = load_messages(db, conversation.id)
    db.close()
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].finish_reason == "cancelled"
    assert messages[1].content and ANSWER.startswith(messages[1].content)


@run_async
async def test_new_chat_mid_answer_files_the_answer_under_its_own_conversation(
    scripted_db: Path,
) -> None:
    app = scripted_app(scripted_db, delay_s=0.05)
    async with app.run_test(size=(120, 36)) as pilot:
        await answer_under_way(pilot, "First")
        await pilot.press("ctrl+n")
        app.backend.delay_s = 0.0
        await ask(pilot, "Second")
        await app.chat_store.flush()
    db = open_database(scripted_db)
    by_title = {c.title: load_messages(db, c.id) for c in list_conversations(db)}
    db.close()
    assert [m.finish_reason for m in by_title["First"]] == [None, "cancelled"]
    assert [(m.content, m.finish_reason) for m in by_title["Second"]] == [
        ("Second", None),
        (ANSWER, "stop"),
    ]
