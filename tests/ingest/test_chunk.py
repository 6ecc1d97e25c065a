"""Chunking: token limits, line ranges, headings, pages, overlap."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from gritdesk.ingest.chunk import ChunkingPolicy, chunk_document
from gritdesk.ingest.document import Block, ParsedDocument
from gritdesk.ingest.parse import parse_document
from ingest.fake_embedder import WordCounter


def markdown_chunks(source: str, max_tokens: int = 64, **policy):
    document = parse_document("doc.md", source.encode())
    return chunk_document(document, WordCounter(max_tokens), ChunkingPolicy(**policy))


def test_every_chunk_fits_and_every_line_is_covered() -> None:
    rng = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    lines = []
    for i in range(400):
        kind = rng.random()
        if kind < 0.05:
            lines.append(f"{'#' * rng.randint(1, 3)} Heading {i}")
        elif kind < 0.2:
            lines.append("")
        elif kind < 0.23:
            lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(80, 300))))
        else:
            lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 15))))
    counter = WordCounter(48)
    document = parse_document("doc.md", "\n".join(lines).encode())
    chunks = chunk_document(document, counter, ChunkingPolicy(target_tokens=40, overlap_tokens=8))

    for chunk in chunks:
        assert chunk.token_count == counter.count_tokens(chunk.embedding_text)
        assert chunk.token_count <= counter.max_document_tokens
        assert chunk.text.strip()
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start_line, chunk.end_line + 1))
    for number, line in enumerate(lines, 1):
        if line.strip():
            assert number in covered, f"line {number} is in no chunk"
    joined = " ".join(c.text for c in chunks).split()
    for word_line in lines:  # no word is lost, even from lines longer than a chunk
        for word in set(word_line.split()) - {"#", "##", "###"}:
            assert word in joined


def test_chunks_never_cross_headings_and_keep_the_heading_path() -> None:
    source = (
        "# Guide\n\nintro words here\n\n## Install\n\nrun the installer\n\n## Use\n\nuse it daily\n"
    )
    chunks = markdown_chunks(source)
    assert [(c.heading_path, c.start_line, c.end_line) for c in chunks] == [
        (("Guide",), 1, 3),
        (("Guide", "Install"), 5, 7),
        (("Guide", "Use"), 9, 11),
    ]
    assert chunks[1].embedding_text == "Guide > Install\n## Install\n\nrun the installer"


def test_heading_only_section_joins_its_first_subsection() -> None:
    chunks = markdown_chunks("# Title\n\n## Part\n\ntext of the part\n")
    assert [(c.heading_path, c.start_line, c.end_line) for c in chunks] == [
        (("Title", "Part"), 1, 5)
    ]


def test_long_section_splits_with_overlap_and_prefers_blank_lines() -> None:
    paragraphs = [
        "\n".join(" ".join(f"p{p}l{line}w{w}" for w in range(3)) for line in range(3))
        for p in range(12)
    ]
    source = "\n\n".join(paragraphs)
    paragraph_ends = {4 * p + 3 for p in range(12)}  # 3 lines + 1 blank line each
    chunks = markdown_chunks(source, max_tokens=64, target_tokens=30, overlap_tokens=6)
    assert len(chunks) > 3
    for first, second in pairwise(chunks):
        assert second.start_line <= first.end_line + 2  # overlap or adjacent
        assert second.start_line > first.start_line  # always moving forward
    for chunk in chunks:  # chunks end where paragraphs end, not inside one
        assert chunk.end_line in paragraph_ends, (chunk.start_line, chunk.end_line)


def test_overlap_repeats_the_last_lines() -> None:
    lines = [f"line{i} a b c d e" for i in range(40)]
    document = ParsedDocument("text", [Block(t, i + 1) for i, t in enumerate(lines)])
    chunks = chunk_document(
        document, WordCounter(64), ChunkingPolicy(target_tokens=30, overlap_tokens=8)
    )
    assert len(chunks) > 5
    for first, second in pairwise(chunks):
        assert second.start_line <= first.end_line  # shares at least one line


def test_pdf_chunks_stay_on_one_page() -> None:
    blocks = [Block(f"page {p} line {i} text", None, page=p) for p in (1, 2, 3) for i in range(3)]
    chunks = chunk_document(ParsedDocument("pdf", blocks), WordCounter(64))
    assert [(c.page, c.start_line) for c in chunks] == [(1, None), (2, None), (3, None)]


def test_one_enormous_line_without_spaces_is_cut_to_fit() -> None:
    counter = WordCounter(32)
    text = "-".join(["x"] * 5000)  # 9999 tokens, no whitespace
    chunks = chunk_document(ParsedDocument("text", [Block(text, 1)]), counter)
    assert all(c.token_count <= 32 for c in chunks)
    assert "".join(c.text for c in chunks) == text
    assert {(c.start_line, c.end_line) for c in chunks} == {(1, 1)}


def test_a_too_small_limit_is_an_error() -> None:
    with pytest.raises(ValueError, match="max_document_tokens"):
        chunk_document(ParsedDocument("text", [Block("a", 1)]), WordCounter(2))


def test_chunking_is_deterministic() -> None:
    source = "\n".join(f"# H{i}\n" + "word " * (i * 7) for i in range(30))
    assert markdown_chunks(source) == markdown_chunks(source)


class NewlineHeavyCounter(WordCounter):
    """Counts a newline as 3 tokens: joined lines cost more than the sum of their parts."""

    def count_tokens(self, text: str) -> int:
        return super().count_tokens(text) + 3 * text.count("\n")


def test_exact_count_is_checked_when_the_estimate_is_short() -> None:
    counter = NewlineHeavyCounter(40)
    lines = [f"w{i} x y" for i in range(200)]
    document = ParsedDocument("text", [Block(t, i + 1) for i, t in enumerate(lines)])
    chunks = chunk_document(document, counter, ChunkingPolicy(target_tokens=40))
    assert all(counter.count_tokens(c.embedding_text) <= 40 for c in chunks)
    assert {word for c in chunks for word in c.text.split()} >= {f"w{i}" for i in range(200)}
    assert {line for c in chunks for line in range(c.start_line, c.end_line + 1)} == set(
        range(1, 201)
    )


def test_a_sheet_region_cut_in_several_chunks_repeats_its_header_in_each() -> None:
    rows = ["Station,Species,Count"] + [f"site {n},sparrow,{n}" for n in range(2, 41)]
    document = parse_document("census.csv", "\n".join(rows).encode())
    # a limit far below the region's size: the chunker must cut a region
    chunks = chunk_document(document, WordCounter(24), ChunkingPolicy(target_tokens=24))

    by_region: dict[str, list[list[str]]] = {}
    for chunk in chunks:
        by_region.setdefault(chunk.locator or "", []).append(chunk.text.splitlines())
    assert any(len(cut) > 2 for cut in by_region.values()), "no region was cut"
    seen = []
    for cut in by_region.values():
        assert all(lines[0] == "Station | Species | Count" for lines in cut)
        seen += [line for lines in cut for line in lines[1:]]
    assert all(f"site {n} | sparrow | {n}" in seen for n in range(2, 41))  # every row kept
    assert all(chunk.token_count <= 24 for chunk in chunks)
