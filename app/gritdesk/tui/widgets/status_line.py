"""One line saying what the chat runs on and how the last answer went.

Model and quantization, index size, then tokens/s, time to first token (from Enter:
retrieval included) and KV cache hits of the latest answer, and the cache mode.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from gritdesk.rag.answer import AnswerTimings
from gritdesk.store.index_size import IndexSize
from gritdesk.terminal_text import printable_line
from gritdesk.tui.styles import styles_beside


def answer_figures(timings: AnswerTimings) -> str:
    rate = timings.tokens_per_second
    parts = [f"{rate:.0f} tok/s" if rate >= 100 else f"{rate:.1f} tok/s"]
    if timings.first_token_ms is not None:
        first = timings.retrieval_ms + timings.rerank_ms + timings.first_token_ms
        parts.append(f"1st token {first:.0f} ms")
    parts.append(f"KV hit {timings.kv_hits}/{timings.kv_hits + timings.kv_misses}")
    return " · ".join(parts)


class StatusLine(Widget):
    DEFAULT_CSS = styles_beside(__file__)

    activity: reactive[str] = reactive("opening the index…")
    model: reactive[str] = reactive("")
    index: reactive[str] = reactive("")
    figures: reactive[str] = reactive("")
    cache_mode: reactive[str] = reactive("")

    def show_index_size(self, db_name: str, size: IndexSize) -> None:
        self.index = f"{db_name} {size.chunks} chunks/{size.files} files"

    def show_timings(self, timings: AnswerTimings) -> None:
        self.figures = answer_figures(timings)

    def render(self) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f" {self.activity} ", style="bold")
        for part, style in (
            (self.model, ""),
            (self.index, ""),
            (self.figures, ""),
            (f"cache {self.cache_mode}" if self.cache_mode else "", "dim"),
        ):
            if part:
                line.append("│ ", style="dim")
                line.append(printable_line(part) + " ", style=style)
        return line
