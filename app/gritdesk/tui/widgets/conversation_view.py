"""The conversation: questions as plain text, answers as Markdown that streams in.

An answer is written through Textual's `MarkdownStream`, which appends fragments to the
document (batching them when tokens come faster than frames) instead of re-rendering the
whole message per token; `BlockSplitter` keeps the block being appended to short. The view
stays scrolled to the bottom until the user scrolls up.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.containers import VerticalScroll
from textual.markup import escape
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from gritdesk.store.conversations import StoredMessage
from gritdesk.terminal_text import printable, printable_line
from gritdesk.tui.block_splitter import BlockSplitter
from gritdesk.tui.styles import styles_beside

FINISH_NOTES = {
    "cancelled": "stopped",
    "length": "stopped at the token limit",
    "context": "stopped: the context is full",
    "error": "failed",
}


class QuestionMessage(Static):
    def __init__(self, text: str) -> None:
        super().__init__(printable(text), markup=False)
        self.text = text
        self.border_title = "You"


class AnswerMessage(Markdown):
    """One answer; `text` is exactly what has been shown so far (model output without
    terminal control sequences)."""

    def __init__(self, text: str = "", finish_reason: str | None = None) -> None:
        text = printable(text)
        super().__init__(text)
        self.text = text
        self.border_title = "gritdesk"
        self._stream: MarkdownStream | None = None
        self._splitter = BlockSplitter()
        if finish_reason is not None:
            self.set_finished(finish_reason)

    def set_activity(self, activity: str) -> None:
        self.border_subtitle = activity

    async def write(self, piece: str) -> None:
        piece = printable(piece)
        if self._stream is None:
            self._stream = Markdown.get_stream(self)
        self.text += piece
        await self._stream.write(self._splitter.feed(piece))

    async def close_stream(self) -> None:
        """Draw whatever is pending and stop streaming. If the stream had block breaks added,
        the answer is drawn again from its exact text (in the background: Markdown parses it
        on a worker thread)."""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.stop()
        if self._splitter.split:
            self._splitter = BlockSplitter()
            self.update(self.text)

    def set_finished(self, finish_reason: str, error: str | None = None) -> None:
        self.set_class(finish_reason in ("cancelled", "error"), "-interrupted")
        self.border_subtitle = (
            escape(printable_line(error)) if error else FINISH_NOTES.get(finish_reason, "")
        )
        if not self.text and finish_reason != "error":
            self.border_subtitle = (self.border_subtitle + " · no text").strip(" ·")


class ConversationView(VerticalScroll):
    DEFAULT_CSS = styles_beside(__file__)

    def on_mount(self) -> None:
        self.anchor()

    async def clear(self) -> None:
        await self.remove_children()

    async def add_question(self, text: str) -> QuestionMessage:
        message = QuestionMessage(text)
        await self.mount(message)
        self.anchor()
        return message

    async def add_answer(self, text: str = "", finish_reason: str | None = None) -> AnswerMessage:
        answer = AnswerMessage(text, finish_reason)
        await self.mount(answer)
        self.anchor()
        return answer

    async def show_messages(self, messages: Sequence[StoredMessage]) -> None:
        """Replace the view with a stored conversation."""
        await self.clear()
        widgets: list[QuestionMessage | AnswerMessage] = []
        for message in messages:
            if message.role == "user":
                widgets.append(QuestionMessage(message.content))
            else:
                widgets.append(AnswerMessage(message.content, message.finish_reason or "stop"))
        if widgets:
            await self.mount_all(widgets)
        self.anchor()

    def last_answer(self) -> AnswerMessage | None:
        answers = self.query(AnswerMessage)
        return answers.last() if answers else None
