"""The chat shows hostile file text, names and titles as text: no escape sequence reaches a
widget, and names or questions that look like markup neither style nor crash anything."""

from __future__ import annotations

from pathlib import Path

from gritdesk.ingest.indexer import IndexOptions, index_paths
from gritdesk.rag.answer import AskOptions
from gritdesk.rag.kv_saving_embedder import KvSavingEmbedder
from gritdesk.runtime.engine import Engine, EngineSettings, GenerationOptions
from gritdesk.session import kv_cache_directory
from gritdesk.settings import Settings
from gritdesk.store.connection import open_database
from gritdesk.store.kv_cache import KvCacheStore
from gritdesk.tui.app import GritdeskApp
from gritdesk.tui.widgets.conversation_view import AnswerMessage, QuestionMessage
from gritdesk.tui.widgets.sources_panel import SourcesPanel, chunk_text, source_label

from .conftest import run_async, type_question, wait_until

TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"


def hostile_corpus(root: Path) -> Path:
    for i, name in enumerate(["[bold]x[/].md", "[/]stray.md", "evil\x1b]0;name\x07.md"]):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        plain = f"Zygomorphic flowers are bilaterally symmetric, note {i}. "
        path.write_text(
            f"# Heading \x1b[31m{i}\x1b[0m\n\nZygomorphic {TITLE}flowers {CLEAR}are. "
            + plain * 12
            + "\n"
        )
    return root


def no_controls(text: str) -> bool:
    return not any(ch in text for ch in "\x1b\x07\x9b\x9d")


def build_hostile_index(db_path: Path, docs: Path, model_path: Path) -> None:
    db = open_database(db_path)
    with Engine(model_path, EngineSettings(n_ctx=2048)) as engine:
        embedder = KvSavingEmbedder(engine, KvCacheStore(db, kv_cache_directory(db_path)))
        index_paths(
            db, embedder, [docs], IndexOptions(model_path=str(engine.path), recipe="gritlm")
        )
    db.close()


@run_async
async def test_sources_questions_and_notes_hold_no_escape_sequences(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    docs = hostile_corpus(tmp_path / "docs")
    db_path = tmp_path / "index.db"
    build_hostile_index(db_path, docs, tiny_model_path)
    # a 512-token context leaves chunks out: the note names their (markup-like) files
    app = GritdeskApp(
        Settings(db=db_path, model=tiny_model_path, context=512),
        ask_options=AskOptions(k=3, generation=GenerationOptions(max_tokens=8)),
        cursor_blink=False,
    )
    question = f"[bold]Zygomorphic[/] flowers? {TITLE}"
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.chat_screen
        await wait_until(pilot, lambda: app.backend is not None, what="the model to load")
        await type_question(pilot, question)
        await wait_until(pilot, lambda: not screen.answering, what="the answer")
        await pilot.pause()

        sources = screen.query_one(SourcesPanel).sources
        assert sources, "nothing retrieved"
        assert any("[/]" in s.location for s in sources)
        for source in sources:
            assert no_controls(source_label(source).plain)
            assert no_controls(chunk_text(source).plain)
        assert any("Zygomorphic flowers are" in chunk_text(s).plain for s in sources)
        shown = screen.query_one(QuestionMessage)
        assert "[bold]Zygomorphic[/]" in str(shown.render()) and no_controls(str(shown.render()))
        assert no_controls(screen.query(AnswerMessage).last().text)
        notes = [n.message for n in app._notifications]
        assert any("left out" in n and "[/]" in n for n in notes), notes
        assert all(no_controls(n) for n in notes)
        assert no_controls(app.export_screenshot())
        # the conversation's title (the question) is a border title: markup, escaped
        assert "[bold]Zygomorphic[/]" in app.export_screenshot()
