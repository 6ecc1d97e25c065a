"""The chunks behind the latest answer: `path:lines`, score, whether its KV was reused.

Moving through the list shows the highlighted chunk's text below it, so a citation can be
checked without leaving the chat. Once the answer is done, the sources holding its evidence
(the sentences that support it, `rag/evidence.py`) are marked, the first is shown, and the
sentences are highlighted in its text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from gritdesk.rag.evidence import Evidence
from gritdesk.store.citations import Citation
from gritdesk.terminal_text import printable, printable_line
from gritdesk.tui.styles import styles_beside

KV_WORDS = {
    "cached": "KV cached",
    "computed": "KV computed",
    "fresh": "as text",
    "kept": "KV kept",  # still in the context from the previous turn
}


LOCATION_CHARS = 36  # what fits on one line of the panel after "[n] "


def short_location(location: str, width: int = LOCATION_CHARS) -> str:
    """The location's end (file name and lines matter most) when it is too long."""
    return location if len(location) <= width else "…" + location[-(width - 1) :]


EVIDENCE_STYLE = "bold reverse"


def source_label(source: Citation, kv_known: bool = True, evidence: bool = False) -> Text:
    label = Text()
    label.append(f"[{source.number}] ", style="bold")
    label.append(short_location(printable_line(source.location)))
    kv = KV_WORDS.get(source.kv, source.kv) if kv_known else "KV …"
    label.append(f"\n    score {source.score:.4f} · {kv}", style="dim")
    if evidence:
        label.append(" · evidence", style="bold")
    return label


def chunk_text(source: Citation, evidence: Sequence[Evidence] = ()) -> Text:
    """The chunk under its heading path, its evidence sentences highlighted."""
    text = Text()
    if source.heading_path:
        text.append(f"§ {printable_line(source.heading_path)}\n\n", style="bold")
    start = len(text.plain)
    body = printable(source.text)
    text.append(body)
    for item in evidence:
        words = printable(item.text).split()
        pattern = r"\W+".join(re.escape(word) for word in words)  # line breaks, list marks
        match = re.search(pattern, body) if words else None
        if match is not None:
            text.stylize(EVIDENCE_STYLE, start + match.start(), start + match.end())
    return text


class SourcesPanel(Vertical):
    DEFAULT_CSS = styles_beside(__file__)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.sources: list[Citation] = []
        self.evidence: list[Evidence] = []
        self.border_title = "Sources"

    def compose(self) -> ComposeResult:
        yield OptionList(id="source-list")
        with VerticalScroll(id="chunk-view"):
            yield Static("Ask a question: its sources show here.", id="chunk-text", markup=False)

    def show(self, sources: Sequence[Citation], *, kv_known: bool = True) -> None:
        """List `sources`, keeping the highlighted one when only their KV state changed."""
        options = self.query_one("#source-list", OptionList)
        keep = (
            options.highlighted
            if [s.number for s in sources] == [s.number for s in self.sources]
            else None
        )
        self.sources = list(sources)
        self.evidence = []  # a new answer's: known when it is done
        options.clear_options()
        options.add_options(
            [Option(source_label(s, kv_known), id=str(s.number)) for s in self.sources]
        )
        chunk = self.query_one("#chunk-text", Static)
        if not self.sources:
            chunk.update("No sources for this answer.")
            return
        options.highlighted = keep if keep is not None else 0
        self._show_chunk(options.highlighted or 0)

    def show_evidence(self, evidence: Sequence[Evidence]) -> None:
        """Mark the sources that hold the answer's evidence and show the first of them."""
        self.evidence = list(evidence)
        if not self.sources:
            return
        holding = {e.source.number for e in self.evidence}
        options = self.query_one("#source-list", OptionList)
        options.clear_options()
        options.add_options(
            [
                Option(source_label(s, evidence=s.number in holding), id=str(s.number))
                for s in self.sources
            ]
        )
        first = next(
            (i for i, s in enumerate(self.sources) if s.number in holding), options.highlighted
        )
        options.highlighted = first or 0
        self._show_chunk(options.highlighted or 0)

    def _show_chunk(self, index: int) -> None:
        if 0 <= index < len(self.sources):
            source = self.sources[index]
            shown = [e for e in self.evidence if e.source.number == source.number]
            self.query_one("#chunk-text", Static).update(chunk_text(source, shown))
            self.query_one("#chunk-view", VerticalScroll).scroll_home(animate=False)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self._show_chunk(event.option_index)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._show_chunk(event.option_index)
        self.query_one("#chunk-view", VerticalScroll).focus()
