"""Ask for one line of text (a title, a path); Enter accepts, Esc cancels (None)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from gritdesk.tui.keys import TEXT_PROMPT_KEYS, bindings


class TextPromptScreen(ModalScreen[str | None]):
    CSS_PATH = "text_prompt_screen.tcss"
    BINDINGS: ClassVar[list[BindingType]] = bindings(TEXT_PROMPT_KEYS)  # type: ignore[assignment]

    def __init__(self, question: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box"):
            yield Label(self.question, id="prompt-question")
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")
            yield Label("Enter accepts · Esc cancels", id="prompt-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        self.dismiss(value or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
