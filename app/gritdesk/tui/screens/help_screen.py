"""The key bindings, one table; F1 or ? from anywhere, Esc closes."""

from __future__ import annotations

from typing import ClassVar

from rich import box
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from gritdesk.tui.keys import HELP_ORDER, HELP_SCREEN_KEYS, bindings

INTRO = (
    "Answers come from your indexed files; the Sources panel lists the chunks each answer "
    "was given (path:lines, score, whether the chunk's KV cache was reused). Follow-up "
    "questions see the conversation. Nothing leaves this machine."
)


def key_table() -> Table:
    table = Table(box=box.SIMPLE_HEAD, expand=True, show_edge=False, pad_edge=False)
    table.add_column("Key", style="bold", no_wrap=True)
    table.add_column("What it does", ratio=1)
    for key in HELP_ORDER:
        table.add_row(key.display, key.help)
    return table


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "help_screen.tcss"
    BINDINGS: ClassVar[list[BindingType]] = bindings(HELP_SCREEN_KEYS)  # type: ignore[assignment]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body") as body:
            body.border_title = "gritdesk chat · keys"
            yield Static(INTRO, id="help-intro", markup=False)
            yield Static(key_table(), id="help-keys")
            yield Static("Esc closes this help.", id="help-close")

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
