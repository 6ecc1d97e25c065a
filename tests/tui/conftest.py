"""Fixtures of the chat app tests: an index of the demo corpus built with the tiny model,
fresh copies of it per test, apps wired to it, and a helper that waits on the UI."""

from __future__ import annotations

import asyncio
import functools
import shutil
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from gritdesk.ingest.indexer import IndexOptions, index_paths
from gritdesk.rag.answer import AskOptions
from gritdesk.rag.kv_saving_embedder import KvSavingEmbedder
from gritdesk.runtime.engine import Engine, EngineSettings, GenerationOptions
from gritdesk.runtime.recipes import get_recipe
from gritdesk.session import kv_cache_directory
from gritdesk.settings import Settings
from gritdesk.store.connection import open_database
from gritdesk.store.kv_cache import KvCacheStore
from gritdesk.tui.app import GritdeskApp
from gritdesk.tui.widgets.question_input import QuestionInput

CORPUS = Path(__file__).resolve().parents[2] / "app" / "gritdesk" / "demo_corpus"
# the answer's own words, so retrieval with a random-weight model still finds the chunk
QUESTION = "Hotel costs are refunded up to how many euros a night in Europe?"
ANSWER_FILE = "travel-policy.md"
N_CTX = 2048


def build_index(db_path: Path, model_path: Path, recipe: str = "gritlm") -> None:
    db = open_database(db_path)
    with Engine(model_path, EngineSettings(n_ctx=N_CTX), recipe=get_recipe(recipe)) as engine:
        store = KvCacheStore(db, kv_cache_directory(db_path))
        embedder = KvSavingEmbedder(engine, store)
        index_paths(
            db, embedder, [CORPUS], IndexOptions(model_path=str(engine.path), recipe=recipe)
        )
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def copy_index(source: Path, target: Path) -> Path:
    """A copy of an index (and its saved KV caches) that a test may write to."""
    shutil.copyfile(source, target)
    source_kv, target_kv = kv_cache_directory(source), kv_cache_directory(target)
    if source_kv.exists():
        shutil.rmtree(target_kv, ignore_errors=True)
        shutil.copytree(source_kv, target_kv)
    return target


@pytest.fixture(scope="session")
def demo_index(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path):
    db_path = tmp_path_factory.mktemp("tui-index") / "index.db"
    build_index(db_path, tiny_model_path)
    yield db_path
    shutil.rmtree(kv_cache_directory(db_path), ignore_errors=True)


@pytest.fixture
def chat_db(demo_index: Path, tmp_path: Path):
    db_path = copy_index(demo_index, tmp_path / "index.db")
    yield db_path
    shutil.rmtree(kv_cache_directory(db_path), ignore_errors=True)


def tiny_app(
    db_path: Path,
    model_path: Path,
    *,
    max_tokens: int = 24,
    k: int = 3,
    first_line: bool | None = None,
    **kwargs,
) -> GritdeskApp:
    """The chat app on the tiny model; what is left None (focus, first_line) AskService
    decides: the tiny model is under 1B params, so it reads focused sentences and its
    answer ends with its first line, as in every interface."""
    options = AskOptions(
        k=k, first_line=first_line, generation=GenerationOptions(max_tokens=max_tokens)
    )
    return GritdeskApp(
        Settings(db=db_path, model=model_path, context=N_CTX),
        ask_options=options,
        cursor_blink=False,
        **kwargs,
    )


def run_async(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in its own event loop (no pytest asyncio plugin is pinned)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


async def wait_until(
    pilot: Pilot, condition: Callable[[], bool], timeout: float = 60.0, what: str = ""
) -> None:
    """Let the app run until `condition()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        await asyncio.sleep(0.02)  # not pilot.pause: it waits for every queue to drain


async def type_question(pilot: Pilot, question: str, *, key_by_key: bool = False) -> None:
    """Put `question` in the question box (typed key by key if asked: slower), then Enter;
    returns once the question's answer widget is on screen (mounted by an async handler, so
    on a loaded machine it can come well after the key press)."""
    from gritdesk.tui.widgets.conversation_view import AnswerMessage

    screen = pilot.app.screen
    box = screen.query_one(QuestionInput)
    if key_by_key:
        await pilot.press(*question)
    else:
        box.load_text(question)
    assert box.text == question
    before = len(screen.query(AnswerMessage))
    await pilot.press("enter")
    await wait_until(
        pilot, lambda: len(screen.query(AnswerMessage)) > before, what="the answer to start"
    )


def scripted_app(db_path: Path, **backend_options: Any) -> GritdeskApp:
    """The app over a `ScriptedBackend`: no model, fixed answers and sources."""
    from .scripted_backend import ScriptedBackend

    def open_backend(options: Settings) -> ScriptedBackend:
        return ScriptedBackend(Path(str(options.db)), **backend_options)

    return GritdeskApp(Settings(db=db_path), open_backend=open_backend, cursor_blink=False)


@pytest.fixture
def scripted_db(tmp_path: Path) -> Path:
    from .scripted_backend import fill_index

    db_path = tmp_path / "index.db"
    fill_index(db_path)
    return db_path
