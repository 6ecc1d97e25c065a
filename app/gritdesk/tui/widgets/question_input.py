"""The question box: several lines, Enter sends, Ctrl+J starts a new line.

Ctrl+Enter and Shift+Enter reach an application only in terminals with the kitty keyboard
protocol, and never through tmux; Enter and Ctrl+J are distinct bytes (CR and LF) in every
terminal, so they are the pair that always works. Shift+Enter and Alt+Enter also start a
new line where the terminal reports them, and Ctrl+S sends too.
"""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.binding import BindingType
from textual.message import Message
from textual.widgets import TextArea

from gritdesk.tui.keys import QUESTION_KEYS, bindings
from gritdesk.tui.styles import styles_beside

PLACEHOLDER = "Ask about your files…  (Enter sends · Ctrl+J new line)"
NEWLINE_KEYS = ("ctrl+j", "shift+enter", "alt+enter")


class QuestionInput(TextArea):
    DEFAULT_CSS = styles_beside(__file__)
    BINDINGS: ClassVar[list[BindingType]] = bindings(QUESTION_KEYS)  # type: ignore[assignment]

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, *, cursor_blink: bool = True, id: str | None = None) -> None:
        super().__init__(
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            placeholder=PLACEHOLDER,
            highlight_cursor_line=False,
            id=id,
        )
        self.cursor_blink = cursor_blink

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.action_submit()
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        await super()._on_key(event)

    def action_submit(self) -> None:
        self.post_message(self.Submitted(self.text))
