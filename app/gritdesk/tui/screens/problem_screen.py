"""Why the chat cannot answer (nothing indexed, another model's index, model missing), and
what to do about it, instead of a traceback or a dead window."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Label, Static

from gritdesk.terminal_text import printable, printable_line
from gritdesk.tui.keys import PROBLEM_KEYS, bindings, shortcut
from gritdesk.tui.problem import Problem

INDEX_KEY = shortcut("index_folder", PROBLEM_KEYS)
OPEN_KEY = shortcut("switch_database", PROBLEM_KEYS)
QUIT_KEY = shortcut("app.quit", PROBLEM_KEYS)
HINTS = {  # the keys named from PROBLEM_KEYS: a changed binding changes the hint
    "empty": f"Press {INDEX_KEY} to index a folder now "
    "(or run `gritdesk index PATH` in another terminal).",
    "mismatch": f"Open another database with {OPEN_KEY}, "
    "or rebuild this index with the command above.",
    "model": f"Quit ({QUIT_KEY}) and start again with --model PATH.gguf, or open another database.",
    "database": f"Open another database with {OPEN_KEY}, or quit with {QUIT_KEY}.",
    "unexpected": f"Open another database with {OPEN_KEY}, or quit with {QUIT_KEY}.",
}


class ProblemScreen(Screen[None]):
    CSS_PATH = "problem_screen.tcss"
    BINDINGS: ClassVar[list[BindingType]] = bindings(PROBLEM_KEYS)  # type: ignore[assignment]

    def __init__(self, problem: Problem, db_name: str) -> None:
        super().__init__()
        self.problem = problem
        self.db_name = db_name

    def compose(self) -> ComposeResult:
        with Vertical(id="problem-box"):
            yield Label(self.problem.title, id="problem-title")
            yield Label(f"index: {printable_line(self.db_name)}", id="problem-db", markup=False)
            yield Static(printable(self.problem.detail), id="problem-detail", markup=False)
            yield Label(HINTS[self.problem.kind], id="problem-hint")
        yield Footer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action != "index_folder" or self.problem.can_index

    async def action_index_folder(self) -> None:
        await self.app.run_action("app.index_folder")

    async def action_switch_database(self) -> None:
        await self.app.run_action("app.switch_database")
