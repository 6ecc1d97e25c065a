"""Yes or no before something that cannot be undone (deleting a conversation)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

from gritdesk.terminal_text import printable
from gritdesk.tui.keys import CONFIRM_KEYS, bindings


class ConfirmScreen(ModalScreen[bool]):
    CSS_PATH = "confirm_screen.tcss"
    BINDINGS: ClassVar[list[BindingType]] = bindings(CONFIRM_KEYS)  # type: ignore[assignment]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label(printable(self.question), markup=False)
            yield Label("y: yes · n or Esc: no", id="confirm-hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
