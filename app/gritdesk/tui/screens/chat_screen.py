"""The chat: conversation, question box, sources, status; one answer at a time.

Retrieval and generation run in a worker thread holding the backend's lock (the engine is
not thread-safe); the worker posts messages tagged with the turn they belong to. Esc stops
at once on this side: the answer keeps exactly the text already shown, later pieces of that
turn are dropped, and the worker stops at the next token through `should_stop`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, cast

import apsw
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Footer

from gritdesk.errors import GritdeskError
from gritdesk.rag.answer import AskOptions
from gritdesk.runtime.engine import ChatTurn
from gritdesk.store.conversations import (
    Citation,
    StoredMessage,
    append_message,
    create_conversation,
    get_conversation,
    latest_conversation,
    load_messages,
    title_for,
)
from gritdesk.store.model_record import EmptyIndexError, ModelMismatchError
from gritdesk.terminal_text import printable_line
from gritdesk.tui.backend import ChatBackend
from gritdesk.tui.chat_store import ChatStore
from gritdesk.tui.dialogue import turns_from_messages
from gritdesk.tui.error_log import log_unexpected
from gritdesk.tui.keys import CHAT_KEYS, bindings
from gritdesk.tui.markdown_code import last_code_block
from gritdesk.tui.messages import (
    AnswerFinished,
    AnswerPiece,
    AnswerStarted,
    IndexSizeChanged,
    SourcesKnown,
    StopIndexingRequested,
)
from gritdesk.tui.screens.conversations_screen import ConversationsOutcome, ConversationsScreen
from gritdesk.tui.thread_priority import lower_this_thread
from gritdesk.tui.widgets.conversation_view import AnswerMessage, ConversationView
from gritdesk.tui.widgets.indexing_bar import IndexingBar
from gritdesk.tui.widgets.question_input import QuestionInput
from gritdesk.tui.widgets.sources_panel import SourcesPanel
from gritdesk.tui.widgets.status_line import StatusLine

NEW_CONVERSATION = "New conversation"
# Tokens are sent to the UI thread at most this often (the first one at once): a fast model
# would otherwise queue a message per token and keystrokes would wait behind them.
PIECES_EVERY_S = 1 / 30


def title_markup(title: str) -> str:
    """A border title is markup: a conversation's title is the user's first question."""
    return escape(printable_line(title))


def batched(pieces: Iterable[str], every_s: float) -> Iterator[tuple[str, float]]:
    """Join pieces that come less than `every_s` apart (the first goes at once), each batch
    with the tokens/s so far (a piece is at most one token)."""
    pending: list[str] = []
    posted_at = first_at = 0.0
    for count, piece in enumerate(pieces, 1):
        now = time.monotonic()
        if count == 1:
            first_at = now
        pending.append(piece)
        if now - posted_at >= every_s:
            yield "".join(pending), (count - 1) / (now - first_at) if now > first_at else 0.0
            pending.clear()
            posted_at = now
    if pending:
        yield "".join(pending), 0.0


@dataclass
class OpenConversation:
    """The conversation on screen. Written only on the store thread: `id` stays None until
    its first question is stored, so asking never waits on the database (another process
    may hold the write lock while indexing)."""

    title: str
    id: int | None = None


def _store_question(conn: apsw.Connection, conversation: OpenConversation, question: str) -> None:
    if conversation.id is None:
        conversation.id = create_conversation(conn, conversation.title).id
    append_message(conn, conversation.id, "user", question)


def _store_answer(
    conn: apsw.Connection,
    conversation: OpenConversation,
    text: str,
    sources: list[Citation],
    finish_reason: str,
) -> None:
    assert conversation.id is not None  # its question was stored first (one thread, FIFO)
    append_message(
        conn, conversation.id, "assistant", text, sources=sources, finish_reason=finish_reason
    )


@dataclass
class ActiveAnswer:
    """The answer being generated, as this screen knows it."""

    turn: int
    question: str
    conversation: OpenConversation
    stop: threading.Event
    widget: AnswerMessage
    sources: list[Citation] = field(default_factory=list)
    streaming: bool = False  # the first piece has arrived


class ChatDesk(Protocol):
    """What the chat screen reads of the app that owns it; it asks for changes by message
    (`StopIndexingRequested`, `IndexSizeChanged`)."""

    chat_store: ChatStore
    backend: ChatBackend | None
    backend_wait_message: str
    ask_options: AskOptions
    indexing: bool


class ChatScreen(Screen[None]):
    CSS_PATH = "chat_screen.tcss"
    BINDINGS: ClassVar[list[BindingType]] = bindings(CHAT_KEYS)  # type: ignore[assignment]

    def __init__(self, *, cursor_blink: bool = True) -> None:
        super().__init__()
        self.cursor_blink = cursor_blink
        self.conversation: OpenConversation | None = None
        self.history: list[ChatTurn] = []
        self.active: ActiveAnswer | None = None
        self._turns = 0
        self._turns_at_open = 0

    @property
    def desk(self) -> ChatDesk:
        return cast("ChatDesk", self.app)

    def compose(self) -> ComposeResult:
        with Horizontal(id="chat-main"):
            with Vertical(id="chat-column"):
                yield ConversationView(id="conversation")
                yield QuestionInput(cursor_blink=self.cursor_blink, id="question")
            yield SourcesPanel(id="sources")
        yield IndexingBar(id="indexing")
        yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(QuestionInput).focus()
        self.query_one(ConversationView).border_title = NEW_CONVERSATION

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Esc (and its footer entry) only while there is something to stop."""
        if action == "stop":
            return self.active is not None or self.desk.indexing
        return True

    @property
    def status(self) -> StatusLine:
        return self.query_one(StatusLine)

    @property
    def answering(self) -> bool:
        return self.active is not None

    # --- conversations -----------------------------------------------------------------

    def begin_session(self) -> None:
        """A database was opened: open_latest() will resume its last conversation unless a
        question is asked first."""
        self._turns_at_open = self._turns

    async def open_latest(self) -> None:
        """Resume the most recent conversation of the current database (or start one),
        unless a question was asked since the database was opened: never wipe it."""
        if self._turns != self._turns_at_open:
            return
        latest = await self.desk.chat_store.call(latest_conversation)
        if self._turns != self._turns_at_open:
            return
        if latest is None:
            await self.new_chat()
        else:
            await self.open_conversation(latest.id)

    async def open_conversation(self, conversation_id: int) -> None:
        store = self.desk.chat_store
        conversation = await store.call(get_conversation, conversation_id)
        if conversation is None:
            await self.new_chat()
            return
        messages: list[StoredMessage] = await store.call(load_messages, conversation_id)
        await self.stop_answer()
        self.conversation = OpenConversation(conversation.title, conversation.id)
        self.history = turns_from_messages(messages)
        answers = [m for m in messages if m.role == "assistant"]
        self.query_one(SourcesPanel).show(answers[-1].sources if answers else [])
        view = self.query_one(ConversationView)
        view.border_title = title_markup(conversation.title)
        await view.show_messages(messages)

    async def new_chat(self) -> None:
        await self.stop_answer()
        self.conversation = None
        self.history = []
        view = self.query_one(ConversationView)
        await view.clear()
        view.border_title = NEW_CONVERSATION
        self.query_one(SourcesPanel).show([])
        self.query_one(QuestionInput).focus()
        if self.desk.backend is not None and self.status.activity == "stopped":
            self.status.activity = "ready"

    async def action_new_chat(self) -> None:
        await self.new_chat()

    def action_conversations(self) -> None:
        current = self.conversation.id if self.conversation else None
        self.app.push_screen(ConversationsScreen(self.desk.chat_store, current), self._after_list)

    async def _after_list(self, outcome: ConversationsOutcome | None) -> None:
        if outcome is None:
            return
        current = self.conversation.id if self.conversation else None
        if outcome.open_id is not None and outcome.open_id != current:
            await self.open_conversation(outcome.open_id)
        elif outcome.new_chat or (current is not None and current in outcome.deleted):
            await self.new_chat()
        elif self.conversation is not None and current in outcome.renamed:
            self.conversation.title = outcome.renamed[current]
            self.query_one(ConversationView).border_title = title_markup(self.conversation.title)
        self.query_one(QuestionInput).focus()

    # --- asking ------------------------------------------------------------------------

    @on(QuestionInput.Submitted)
    async def ask(self, event: QuestionInput.Submitted) -> None:
        event.stop()
        question = event.text.strip()
        if not question:
            return
        desk = self.desk
        if self.active is not None:
            self.notify("Still answering: Esc stops the answer first.", severity="warning")
            return
        backend = desk.backend
        if backend is None:
            self.notify(desk.backend_wait_message, severity="warning")
            return
        self.query_one(QuestionInput).clear()
        self._turns += 1  # before any await: open_latest() must see that a question came
        store = desk.chat_store
        if self.conversation is None:
            self.conversation = OpenConversation(title_for(question))
            self.query_one(ConversationView).border_title = title_markup(self.conversation.title)
        store.submit(_store_question, self.conversation, question)
        view = self.query_one(ConversationView)
        await view.add_question(question)
        answer = await view.add_answer()
        answer.set_activity("waiting for the index run…" if desk.indexing else "retrieving…")
        self.active = ActiveAnswer(
            self._turns, question, self.conversation, threading.Event(), answer
        )
        self.status.activity = "answering · Esc stops"
        self.refresh_bindings()
        self.run_answer(
            backend, question, list(self.history), desk.ask_options, self._turns, self.active.stop
        )

    @work(thread=True, group="answer", exit_on_error=False)
    def run_answer(
        self,
        backend: ChatBackend,
        question: str,
        history: list[ChatTurn],
        options: AskOptions,
        turn: int,
        stop: threading.Event,
    ) -> None:
        """Retrieve, then stream; every engine call under the backend's lock."""
        lower_this_thread()
        try:
            with backend.lock:
                if stop.is_set():
                    self.post_message(AnswerFinished(turn, finish_reason="cancelled"))
                    return
                prepared = backend.prepare(question, options, history)
                self.post_message(AnswerStarted(turn, backend.cite(prepared), prepared.notices))
                if stop.is_set():
                    self.post_message(AnswerFinished(turn, finish_reason="cancelled"))
                    return
                told = False
                for text, rate in batched(backend.stream(prepared, stop.is_set), PIECES_EVERY_S):
                    if not told:  # the KV of every source is settled before the first token
                        self.post_message(SourcesKnown(turn, backend.cite(prepared)))
                        told = True
                    self.post_message(AnswerPiece(turn, text, rate))
                if not told:
                    self.post_message(SourcesKnown(turn, backend.cite(prepared)))
                answer = backend.result(prepared)
            self.post_message(
                AnswerFinished(
                    turn,
                    finish_reason=prepared.finish_reason or "stop",
                    timings=prepared.timings,
                    evidence=answer.evidence,
                    not_found=answer.not_found,
                )
            )
        except (GritdeskError, EmptyIndexError, ModelMismatchError) as error:
            self.post_message(AnswerFinished(turn, finish_reason="error", error=str(error)))
        except Exception as error:
            log = log_unexpected("answering a question", error)
            message = f"generation failed: {type(error).__name__}: {error} (details in {log})"
            self.post_message(AnswerFinished(turn, finish_reason="error", error=message))

    def _current(self, turn: int) -> ActiveAnswer | None:
        return self.active if self.active is not None and self.active.turn == turn else None

    @on(AnswerStarted)
    def answer_started(self, message: AnswerStarted) -> None:
        active = self._current(message.turn)
        if active is None:
            return
        active.sources = message.sources
        self.query_one(SourcesPanel).show(message.sources, kv_known=False)
        active.widget.set_activity("answering…")
        for notice in message.notices:
            self.notify(notice, title="Note", timeout=8)
        if not message.sources:
            self.notify("Nothing in the index matched: answering without sources.", timeout=6)

    @on(SourcesKnown)
    def sources_known(self, message: SourcesKnown) -> None:
        active = self._current(message.turn)
        if active is not None:
            active.sources = message.sources
            self.query_one(SourcesPanel).show(message.sources)

    @on(AnswerPiece)
    async def answer_piece(self, message: AnswerPiece) -> None:
        active = self._current(message.turn)
        if active is None:
            return  # stopped (Esc) or replaced: keep what was shown
        if not active.streaming:
            active.streaming = True
            active.widget.set_activity("")
        await active.widget.write(message.text)
        if message.rate:
            self.status.activity = f"answering {message.rate:.0f} tok/s · Esc stops"

    @on(AnswerFinished)
    async def answer_finished(self, message: AnswerFinished) -> None:
        if message.timings is not None:
            self.status.show_timings(message.timings)
        if self._current(message.turn) is None:
            return  # already finished by Esc; only the figures were still to come
        if message.error is None:
            self.query_one(SourcesPanel).show_evidence(message.evidence)
            if message.not_found:
                self.notify(
                    "Not found in your files: " + ", ".join(message.not_found),
                    title="Check this answer",
                    severity="warning",
                    timeout=12,
                )
        await self._finish(message.finish_reason, message.error)

    async def _finish(self, finish_reason: str, error: str | None = None) -> None:
        """Close the active answer with what it shows now, and store it."""
        active = self._settle(finish_reason, error)
        if active is not None:
            await active.widget.close_stream()
            active.widget.set_finished(finish_reason, error)

    def _settle(self, finish_reason: str, error: str | None = None) -> ActiveAnswer | None:
        """Detach the active answer and store the text it shows, whatever comes after."""
        active, self.active = self.active, None
        if active is None:
            return None
        if error is not None:
            self.notify(error, title="The answer failed", severity="error", timeout=12)
        elif active.conversation is self.conversation:
            self.history.append(ChatTurn(active.question, active.widget.text))
        self.desk.chat_store.submit(
            _store_answer, active.conversation, active.widget.text, active.sources, finish_reason
        )
        self.refresh_bindings()
        self.status.activity = "stopped" if finish_reason == "cancelled" else "ready"
        self.post_message(IndexSizeChanged())
        return active

    async def stop_answer(self) -> None:
        """Stop the answer being generated, keeping (and storing) what it shows."""
        if self.active is not None:
            self.active.stop.set()  # the worker stops at its next token
            await self._finish("cancelled")

    def stop_answer_now(self) -> None:
        """On quitting: stop the worker and store the answer's text; no screen updates."""
        active, self.active = self.active, None
        if active is not None:
            active.stop.set()
            self.desk.chat_store.submit(
                _store_answer, active.conversation, active.widget.text, active.sources, "cancelled"
            )

    async def action_stop(self) -> None:
        if self.active is not None:
            await self.stop_answer()
        elif self.desk.indexing:
            self.post_message(StopIndexingRequested())

    # --- copying -------------------------------------------------------------------------

    def _last_answer_text(self) -> str | None:
        answer = self.query_one(ConversationView).last_answer()
        return answer.text if answer is not None and answer.text else None

    def action_copy_answer(self) -> None:
        text = self._last_answer_text()
        if text is None:
            self.notify("No answer to copy yet.", severity="warning")
            return
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied the last answer ({len(text)} characters).")

    def action_copy_code(self) -> None:
        code = last_code_block(self._last_answer_text() or "")
        if code is None:
            self.notify("The last answer has no code block.", severity="warning")
            return
        self.app.copy_to_clipboard(code)
        self.notify(f"Copied the code block ({len(code.splitlines())} lines).")
