"""`gritdesk chat`: a Textual app over the index, one model embedding and generating.

The app owns what outlives a conversation: the backend (index + model, loaded in a
worker), the chat store (history on its own thread), index runs, the cache mode and the
command palette. The chat itself lives in `ChatScreen`. Nothing here blocks the UI thread:
loading the model, answering, indexing and every database call run off it.
"""

from __future__ import annotations

import asyncio
import functools
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen

from gritdesk.errors import GritdeskError
from gritdesk.ingest.indexer import IndexProgress
from gritdesk.rag.answer import AskOptions
from gritdesk.rag.layouts import CacheMode
from gritdesk.settings import Settings, load_settings
from gritdesk.store.conversations import conversation_markdown
from gritdesk.store.index_size import index_size
from gritdesk.store.model_record import ModelMismatchError
from gritdesk.store.sources import list_roots
from gritdesk.terminal_text import printable, printable_line
from gritdesk.tui.backend import ChatBackend, IndexBackend
from gritdesk.tui.chat_store import ChatStore
from gritdesk.tui.error_log import log_unexpected
from gritdesk.tui.keys import APP_KEYS, bindings, shortcut
from gritdesk.tui.messages import (
    BackendProblem,
    BackendReady,
    IndexingFinished,
    IndexingProgress,
    IndexSizeChanged,
    StopIndexingRequested,
    StoreFailed,
)
from gritdesk.tui.problem import Problem, problem_from_error
from gritdesk.tui.screens.chat_screen import ChatScreen
from gritdesk.tui.screens.conversations_screen import ExportRequested
from gritdesk.tui.screens.help_screen import HelpScreen
from gritdesk.tui.screens.problem_screen import ProblemScreen
from gritdesk.tui.screens.text_prompt_screen import TextPromptScreen
from gritdesk.tui.thread_priority import lower_this_thread
from gritdesk.tui.widgets.indexing_bar import IndexingBar

BackendOpener = Callable[[Settings], ChatBackend]
INDEX_SIZE_REFRESH_S = 15.0  # picks up what another process indexed meanwhile
CACHE_MODE_HELP = {  # the command palette's line under each cache mode
    CacheMode.OFF: "plain RAG: the chunks are prefilled as text every time",
    CacheMode.DOC: "reuse each chunk's saved KV (the paper's best answers, fastest on long chunks)",
    CacheMode.QUERY: "cache the question's KV, chunks as text",
    CacheMode.QUERY_DOC: "question KV, then the chunks' KV",
    CacheMode.DOC_QUERY: "the chunks' KV, then the question KV",
}


class IndexRunCancelled(Exception):
    """Raised from the progress callback to stop an index run between files."""


def export_file_name(title: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()[:50] or "conversation"
    return f"{slug}.md"


class GritdeskApp(App[None]):
    TITLE = "gritdesk"
    BINDINGS: ClassVar[list[BindingType]] = bindings(APP_KEYS)  # type: ignore[assignment]

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        open_backend: BackendOpener = IndexBackend.open,
        ask_options: AskOptions | None = None,
        cursor_blink: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings or load_settings()
        self.db_path = self.settings.db
        self.open_backend = open_backend
        self.ask_options = ask_options or AskOptions()
        self.backend: ChatBackend | None = None
        self.backend_wait_message = "The model is still loading…"
        self.chat_store: ChatStore = None  # type: ignore[assignment]  # set on mount
        self.chat_screen = ChatScreen(cursor_blink=cursor_blink)
        self.roots: list[str] = []
        self.indexing = False
        self._index_stop = threading.Event()
        self._generation = 0  # which database the current backend load is for

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification (screens' too: theirs come here) is plain text: errors and
        notes carry paths and file names, which are neither markup nor terminal sequences."""
        super().notify(
            printable(message),
            title=printable_line(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    # --- opening an index ---------------------------------------------------------------

    async def on_mount(self) -> None:
        self._open_store(self.db_path)
        await self.push_screen(self.chat_screen)  # pushed, not the default: loads its CSS_PATH
        self.chat_screen.begin_session()
        self.load_backend(self.db_path, None, self._generation)
        self.set_interval(INDEX_SIZE_REFRESH_S, self.refresh_index_size)
        self.call_after_refresh(self._start_chat)

    async def _start_chat(self) -> None:
        try:
            await self.chat_screen.open_latest()
        except Exception as error:
            self._report_store_error(error)
        self.refresh_index_size()
        self._show_cache_mode()

    def _open_store(self, db_path: Path) -> None:
        self.chat_store = ChatStore(db_path, on_error=lambda e: self.post_message(StoreFailed(e)))

    @work(thread=True, group="backend", exit_on_error=False)
    def load_backend(self, db_path: Path, previous: ChatBackend | None, generation: int) -> None:
        """Close the previous backend, open this database's, check it can answer."""
        lower_this_thread()
        if previous is not None:
            with previous.lock:
                previous.close()
        try:
            backend = self.open_backend(replace(self.settings, db=db_path))
        except Exception as error:
            problem = problem_from_error(error)
            if problem.kind == "unexpected":
                log_unexpected("opening the index", error)
            self.post_message(BackendProblem(problem, generation))
            return
        self.post_message(BackendReady(backend, self._check(backend), generation))

    @staticmethod
    def _check(backend: ChatBackend) -> Problem | None:
        try:
            with backend.lock:
                backend.check_index()
        except Exception as error:
            problem = problem_from_error(error)
            if problem.kind == "unexpected":
                log_unexpected("checking the index", error)
            return problem
        return None

    @work(thread=True, group="backend", exit_on_error=False)
    def recheck_backend(self, backend: ChatBackend, generation: int) -> None:
        lower_this_thread()
        self.post_message(BackendReady(backend, self._check(backend), generation))

    @on(BackendReady)
    def backend_ready(self, message: BackendReady) -> None:
        if message.generation != self._generation:
            self._close_stale(message.backend)
            return
        fresh = self.backend is not message.backend
        self.backend = message.backend
        status = self.chat_screen.status
        status.model = str(message.backend.model)
        if fresh:
            for notice in message.backend.notices:
                self.notify(notice, title="Note", timeout=10)
            self._show_cache_mode()
        if message.problem is not None:
            self._show_problem(message.problem)
            status.activity = "cannot answer yet"
        else:
            self._hide_problem()
            status.activity = "ready"

    @on(BackendProblem)
    def backend_problem(self, message: BackendProblem) -> None:
        if message.generation != self._generation:
            return
        self.backend = None
        self.backend_wait_message = f"{message.problem.title}: {message.problem.detail}"
        self.chat_screen.status.activity = "no model"
        self._show_problem(message.problem)

    @work(thread=True, exit_on_error=False)
    def _close_stale(self, backend: ChatBackend) -> None:
        with backend.lock:
            backend.close()

    def _show_problem(self, problem: Problem) -> None:
        self._hide_problem()
        self.push_screen(ProblemScreen(problem, self.db_path.name))

    def _hide_problem(self) -> None:
        """Pop the problem screen, and whatever was opened over it (help, a prompt)."""
        while any(isinstance(screen, ProblemScreen) for screen in self.screen_stack):
            self.pop_screen()

    # --- switching database ---------------------------------------------------------------

    @work(group="switch-database")
    async def action_switch_database(self) -> None:
        answer = await self.push_screen_wait(
            TextPromptScreen("Open which index database?", str(self.db_path))
        )
        if answer:
            await self.open_database(Path(answer).expanduser())

    async def open_database(self, db_path: Path) -> None:
        """Switch to another index: its conversations now, its model in a worker."""
        await self.chat_screen.stop_answer()
        self.stop_indexing()
        previous, self.backend = self.backend, None
        self.backend_wait_message = "The model is still loading…"
        self._generation += 1
        old_store = self.chat_store
        await asyncio.to_thread(old_store.close)
        self.db_path = db_path
        self._open_store(db_path)
        self._hide_problem()
        self.chat_screen.status.activity = "opening the index…"
        self.chat_screen.status.figures = ""
        self.load_backend(db_path, previous, self._generation)
        self.chat_screen.begin_session()
        await self._start_chat()

    # --- indexing ---------------------------------------------------------------------------

    @work(group="index-prompt")
    async def action_index_folder(self) -> None:
        folder = await self.push_screen_wait(
            TextPromptScreen("Index which folder?", str(Path.cwd()))
        )
        if folder:
            self.start_indexing([Path(folder).expanduser().resolve()], folder)

    def start_indexing(self, paths: Sequence[Path], what: str) -> None:
        if self.backend is None:
            self.notify(self.backend_wait_message, severity="warning")
            return
        if self.indexing:
            self.notify("An index run is already going (Esc stops it).", severity="warning")
            return
        self.indexing = True
        self._index_stop = threading.Event()
        for bar in self._indexing_bars():
            bar.start(what)
        self.chat_screen.refresh_bindings()
        self.run_index(self.backend, list(paths), self._index_stop)

    def stop_indexing(self) -> None:
        self._index_stop.set()

    @on(StopIndexingRequested)
    def stop_indexing_requested(self) -> None:
        self.stop_indexing()

    @work(thread=True, group="index", exit_on_error=False)
    def run_index(self, backend: ChatBackend, paths: list[Path], stop: threading.Event) -> None:
        lower_this_thread()

        def progress(update: IndexProgress) -> None:
            if stop.is_set():
                raise IndexRunCancelled
            self.post_message(IndexingProgress(update))

        try:
            with backend.lock:
                report = backend.index(paths, progress)
        except IndexRunCancelled:
            self.post_message(IndexingFinished(None, cancelled=True))
        except (GritdeskError, ModelMismatchError, OSError) as error:
            self.post_message(IndexingFinished(None, error=str(error)))
        except Exception as error:
            log = log_unexpected("indexing", error)
            self.post_message(
                IndexingFinished(None, error=f"{type(error).__name__}: {error} (see {log})")
            )
        else:
            self.post_message(IndexingFinished(report))

    def _indexing_bars(self) -> list[IndexingBar]:
        return [bar for screen in self.screen_stack for bar in screen.query(IndexingBar)]

    @on(IndexingProgress)
    def indexing_progress(self, message: IndexingProgress) -> None:
        for bar in self._indexing_bars():
            bar.update_progress(message.progress)

    @on(IndexingFinished)
    def indexing_finished(self, message: IndexingFinished) -> None:
        self.indexing = False
        for bar in self._indexing_bars():
            bar.stop()
        self.chat_screen.refresh_bindings()
        if message.cancelled:
            self.notify("Index run stopped; the next run continues where it left off.")
        elif message.error is not None:
            self.notify(message.error, title="Indexing failed", severity="error", timeout=12)
        elif message.report is not None:
            r = message.report
            self.notify(
                f"indexed {r.indexed}, unchanged {r.unchanged}, removed {r.removed}, "
                f"skipped {len(r.skipped)}; {r.chunks_written} chunks in {r.elapsed_s:.1f} s",
                title="Index up to date",
            )
        self.refresh_index_size()
        if self.backend is not None:
            self.recheck_backend(self.backend, self._generation)

    # --- status, cache mode ---------------------------------------------------------------

    @on(IndexSizeChanged)
    def index_size_changed(self) -> None:
        self.refresh_index_size()

    @work(group="index-size", exclusive=True, exit_on_error=False)
    async def refresh_index_size(self) -> None:
        store = self.chat_store
        try:
            size = await store.call(index_size)
            roots = await store.call(list_roots)
        except Exception as error:
            if store is self.chat_store:
                self._report_store_error(error)
            return
        if store is self.chat_store:
            self.chat_screen.status.show_index_size(self.db_path.name, size)
            self.roots = [root.path for root in roots]

    def set_cache_mode(self, mode: CacheMode) -> None:
        self.ask_options = replace(self.ask_options, cache_mode=mode)
        self._show_cache_mode()
        self.notify(f"Cache mode: {mode.value} (from the next question on).")

    @property
    def cache_mode(self) -> CacheMode | None:
        """The mode the next question gets: the one chosen, else the backend's default
        (None until a backend is loaded)."""
        chosen = self.ask_options.cache_mode
        backend = self.backend
        return chosen or (backend.default_cache_mode if backend is not None else None)

    def _show_cache_mode(self) -> None:
        mode = self.cache_mode
        self.chat_screen.status.cache_mode = mode.value if mode is not None else ""

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P): the chat's commands, then Textual's own (theme,
        quit...); built each time it opens, so the folders and cache mode are current."""
        yield from self._chat_commands()
        yield from super().get_system_commands(screen)

    def _chat_commands(self) -> Iterator[SystemCommand]:
        screen = self.chat_screen
        new, chats, copy = shortcut("new_chat"), shortcut("conversations"), shortcut("copy_answer")
        code, help_key = shortcut("copy_code"), shortcut("help")
        yield SystemCommand("New chat", f"Start a new conversation ({new})", screen.action_new_chat)
        yield SystemCommand(
            "Conversations",
            f"Resume, rename, delete or export ({chats})",
            screen.action_conversations,
        )
        yield SystemCommand(
            "Export conversation", "Write this conversation as Markdown", self.export_current
        )
        yield SystemCommand(
            "Copy last answer", f"To the clipboard ({copy})", screen.action_copy_answer
        )
        yield SystemCommand(
            "Copy last code block", f"From the last answer ({code})", screen.action_copy_code
        )
        yield SystemCommand(
            "Switch database",
            f"Open another index (now {self.db_path})",
            self.action_switch_database,
        )
        yield SystemCommand(
            "Index a folder", "Add a folder to this index", self.action_index_folder
        )
        if self.roots:
            yield SystemCommand(
                "Re-index all folders",
                f"Bring all {len(self.roots)} folders up to date",
                lambda: self.start_indexing([], "all folders"),
            )
        for root in self.roots:
            yield SystemCommand(
                f"Re-index {Path(root).name}",
                root,
                lambda root=root: self.start_indexing([Path(root)], Path(root).name),
                discover=False,
            )
        current = self.cache_mode
        for mode in CacheMode:
            marker = " (current)" if mode is current else ""
            yield SystemCommand(
                f"Cache mode: {mode.value}{marker}",
                CACHE_MODE_HELP[mode],
                lambda mode=mode: self.set_cache_mode(mode),
                discover=False,
            )
        yield SystemCommand("Help", f"Key bindings ({help_key})", self.action_help)

    # --- export, help, errors ---------------------------------------------------------------

    @on(ExportRequested)
    def export_requested(self, message: ExportRequested) -> None:
        self.export_conversation(message.conversation_id, message.title)

    @work(group="export")
    async def export_conversation(self, conversation_id: int, title: str) -> None:
        default = Path.cwd() / export_file_name(title)
        answer = await self.push_screen_wait(
            TextPromptScreen("Export the conversation as Markdown to:", str(default))
        )
        if not answer:
            return
        target = Path(answer).expanduser()
        try:
            text = await self.chat_store.call(conversation_markdown, conversation_id)
            await asyncio.to_thread(target.write_text, text, encoding="utf-8")
        except (OSError, KeyError) as error:
            self.notify(f"Could not export: {error}", severity="error")
            return
        self.notify(f"Exported to {target}")

    @work(group="export")
    async def export_current(self) -> None:
        await self.chat_store.flush()  # the current conversation's id comes with its first write
        conversation = self.chat_screen.conversation
        if conversation is None or conversation.id is None:
            self.notify("Nothing to export yet: ask a question first.", severity="warning")
            return
        self.export_conversation(conversation.id, conversation.title)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    @on(StoreFailed)
    def store_failed(self, message: StoreFailed) -> None:
        self._report_store_error(message.error)

    def _report_store_error(self, error: BaseException) -> None:
        if not isinstance(error, GritdeskError | OSError):
            log_unexpected("chat history", error)
        self.notify(f"Chat history: {type(error).__name__}: {error}", severity="error", timeout=10)

    # --- shutting down ----------------------------------------------------------------------

    def on_unmount(self) -> None:
        """Stop the workers, let pending history writes land, free the model."""
        self.chat_screen.stop_answer_now()
        self.stop_indexing()
        if self.chat_store is not None:
            self.chat_store.close()
        backend = self.backend
        if backend is not None and backend.lock.acquire(timeout=10):
            try:
                backend.close()
            finally:
                backend.lock.release()


def run_chat(settings: Settings, root: Path | None = None) -> None:
    """Entry point of `gritdesk chat`; `root`: answer from that indexed folder only."""
    GritdeskApp(settings, open_backend=functools.partial(IndexBackend.open, root=root)).run()
