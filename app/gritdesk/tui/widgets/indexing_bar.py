"""Progress of an index run started from the chat (files done, chunks, current file)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar

from gritdesk.ingest.indexer import IndexProgress
from gritdesk.terminal_text import printable_line
from gritdesk.tui.styles import styles_beside


class IndexingBar(Horizontal):
    DEFAULT_CSS = styles_beside(__file__)

    def compose(self) -> ComposeResult:
        yield Label("indexing", id="indexing-phase")
        yield ProgressBar(total=100, show_eta=False, id="indexing-progress")
        yield Label("", id="indexing-detail", markup=False)

    def start(self, what: str) -> None:
        self.query_one("#indexing-phase", Label).update(f"indexing {what}")
        self.query_one("#indexing-detail", Label).update("scanning… (Esc stops)")
        self.query_one(ProgressBar).update(total=None, progress=0)
        self.display = True

    def update_progress(self, progress: IndexProgress) -> None:
        bar = self.query_one(ProgressBar)
        bar.update(total=progress.files_total or None, progress=progress.files_done)
        current = printable_line(progress.current_path or "")[-30:]
        self.query_one("#indexing-detail", Label).update(
            f"{progress.files_done}/{progress.files_total} files · {progress.chunks_done} chunks"
            f" · {progress.tokens_per_s:.0f} tok/s  {current}"
        )

    def stop(self) -> None:
        self.display = False
