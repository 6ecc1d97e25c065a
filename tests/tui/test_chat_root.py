"""`gritdesk chat --root`: the chat answers from one indexed folder only (the tiny model,
real retrieval), and an unknown folder is explained instead of answered from everything."""

from __future__ import annotations

import functools
from pathlib import Path

from gritdesk.ingest.indexer import IndexOptions, index_paths
from gritdesk.rag.kv_saving_embedder import KvSavingEmbedder
from gritdesk.rag.retrieve import keyword_search
from gritdesk.rag.root_scope import resolve_root
from gritdesk.runtime.engine import Engine, EngineSettings
from gritdesk.session import kv_cache_directory
from gritdesk.store.connection import open_database
from gritdesk.store.kv_cache import KvCacheStore
from gritdesk.tui.backend import IndexBackend
from gritdesk.tui.screens.problem_screen import ProblemScreen
from gritdesk.tui.widgets.sources_panel import SourcesPanel

from .conftest import CORPUS, N_CTX, run_async, tiny_app, type_question, wait_until

# words of the other folder's note, so without the scope it is the best keyword match
QUESTION = "Zanzibar hotel costs are refunded up to how many euros a night?"
OTHER_NOTE = "Zanzibar office: hotel costs are refunded up to 99 euros a night in Zanzibar.\n"


def add_other_root(db_path: Path, model_path: Path, folder: Path) -> None:
    folder.mkdir()
    (folder / "zanzibar.md").write_text(OTHER_NOTE * 3)
    db = open_database(db_path)
    try:
        with Engine(model_path, EngineSettings(n_ctx=N_CTX)) as engine:
            embedder = KvSavingEmbedder(engine, KvCacheStore(db, kv_cache_directory(db_path)))
            index_paths(
                db, embedder, [folder], IndexOptions(model_path=str(engine.path), recipe="gritlm")
            )
        # the question does reach the other folder when nothing scopes it
        everywhere = keyword_search(db, QUESTION, 5)
        only_other = keyword_search(db, QUESTION, 5, resolve_root(db, folder).id)
        assert everywhere and everywhere[0] in only_other
    finally:
        db.close()


def root_app(db_path: Path, model_path: Path, root: Path):
    opener = functools.partial(IndexBackend.open, root=root)
    return tiny_app(db_path, model_path, max_tokens=4, k=3, open_backend=opener)


@run_async
async def test_chat_scoped_to_a_root_never_cites_the_other_root(
    chat_db: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other-notes"
    add_other_root(chat_db, tiny_model_path, other)
    app = root_app(chat_db, tiny_model_path, CORPUS)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.chat_screen
        await wait_until(pilot, lambda: app.backend is not None, what="the model to load")
        for question in (QUESTION, "And in Zanzibar?"):  # the follow-up retrieves too
            await type_question(pilot, question)
            await wait_until(pilot, lambda: not screen.answering, what="the answer")
            sources = screen.query_one(SourcesPanel).sources
            assert sources, "no sources listed"
            corpus = str(CORPUS.resolve()) + "/"
            assert all(s.path.startswith(corpus) for s in sources), [s.path for s in sources]
        assert not isinstance(app.screen, ProblemScreen)


@run_async
async def test_chat_root_that_is_not_indexed_is_explained(
    chat_db: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    app = root_app(chat_db, tiny_model_path, tmp_path / "never-indexed")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(
            pilot, lambda: isinstance(app.screen, ProblemScreen), what="the problem screen"
        )
        detail = app.screen.problem.detail
        assert "never-indexed: not an indexed folder" in detail and "demo_corpus" in detail
        assert app.backend is None
