"""A streaming answer is drawn in short Markdown blocks, and exactly once it has ended."""

from __future__ import annotations

import numpy as np
from markdown_it import MarkdownIt
from textual.app import App, ComposeResult
from textual.widgets._markdown import MarkdownBlock

from gritdesk.tui.block_splitter import BlockSplitter
from gritdesk.tui.widgets.conversation_view import AnswerMessage, ConversationView

from .conftest import run_async, wait_until

LIMIT = 200


def words(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    vocab = ["harbour", "ships", "grain", "a", "storm", "repaired", "lighthouse", "notes"]
    return [str(w) for w in rng.choice(vocab, n)]


def stream(splitter: BlockSplitter, text: str, piece: int = 3) -> str:
    return "".join(splitter.feed(text[i : i + piece]) for i in range(0, len(text), piece))


def blocks(markdown: str) -> list[tuple[str, str]]:
    """(kind, content) of each top-level block: paragraphs' inline text, fences' code."""
    tokens = MarkdownIt("gfm-like").parse(markdown)
    out = []
    for i, token in enumerate(tokens):
        if token.type == "fence":
            out.append(("fence:" + token.info, token.content))
        elif token.type == "paragraph_open":
            out.append(("paragraph", tokens[i + 1].content))
    return out


def test_a_long_paragraph_streams_in_short_paragraphs_with_the_same_words() -> None:
    text = "Intro line.\n\n" + " ".join(words(400)) + "\n\nLast."
    splitter = BlockSplitter(LIMIT)
    shown = blocks(stream(splitter, text))
    assert splitter.split
    assert len(shown) > 5
    assert all(len(content) <= LIMIT + 12 for _, content in shown)
    assert " ".join(c for _, c in shown).split() == text.split()


def test_a_long_code_block_is_closed_and_reopened_with_its_language() -> None:
    code = "".join(f"print({i}, 'x' * {i})\n" for i in range(60))
    text = "Run this:\n\n```python\n" + code + "```\n\nDone."
    shown = blocks(stream(BlockSplitter(LIMIT), text, piece=5))
    fences = [(kind, content) for kind, content in shown if kind.startswith("fence")]
    assert len(fences) > 3
    assert {kind for kind, _ in fences} == {"fence:python"}
    assert all(len(content) <= LIMIT + 30 for _, content in fences)
    assert "".join(content for _, content in fences) == code
    assert shown[-1] == ("paragraph", "Done.")


def test_short_answers_pass_unchanged() -> None:
    text = "A short answer [1].\n\n```sh\nls\n```\n\n- one\n- two\n"
    splitter = BlockSplitter()
    assert stream(splitter, text) == text
    assert not splitter.split


class OneAnswer(App[None]):
    def compose(self) -> ComposeResult:
        yield ConversationView()


@run_async
async def test_the_answer_widget_is_drawn_from_the_exact_text_when_it_ends() -> None:
    text = " ".join(words(600, seed=1))
    app = OneAnswer()
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(ConversationView)
        answer: AnswerMessage = await view.add_answer()
        for i in range(0, len(text), 40):
            await answer.write(text[i : i + 40])
        await pilot.pause()
        assert len(answer.query(MarkdownBlock)) > 3  # short blocks while it streams
        await answer.close_stream()
        assert answer.text == text
        assert answer.source == text
        await wait_until(  # one paragraph, as the model wrote it
            pilot, lambda: len(answer.query(MarkdownBlock)) == 1, what="the answer redrawn"
        )
