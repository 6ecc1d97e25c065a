"""Hybrid retrieval (vector KNN + BM25, fused by RRF) with the bag-of-words test embedder."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import apsw
import pytest

from gritdesk.ingest.chunk import ChunkingPolicy
from gritdesk.ingest.indexer import IndexOptions, index_paths
from gritdesk.rag.fusion import fuse_rankings
from gritdesk.rag.retrieve import (
    Hit,
    keyword_search,
    keyword_terms,
    make_snippet,
    query_terms,
    search,
)
from gritdesk.store.connection import open_database
from gritdesk.store.fts import match_expression
from gritdesk.store.model_record import EmptyIndexError, ModelMismatchError
from ingest.fake_embedder import BagOfWordsEmbedder
from ingest.fixture_files import words

VOCABULARY = [
    *words(
        "apple banana cherry dates elder fig grape honeydew iris jasmine kiwi lemon mango "
        "nutmeg olive papaya quince radish sage thyme ugli vanilla walnut yam zucchini basil "
        "carrot dill endive fennel garlic hops inkberry juniper kale leek mint nettle onion"
    ),
    *words("the the is who a of and in"),  # common words are common
]
TARGET = (
    "The lighthouse keeper logged every passing ship in a leather ledger, noting the "
    "weather, the tide and the colour of each sail before the lamp was lit at dusk."
)


def write_docs(root: Path, seed: int = 0) -> None:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(40):
        paragraphs = [
            " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(12, 30))) + "."
            for _ in range(3)
        ]
        if i == 17:
            paragraphs[1] = TARGET
        if i == 29:
            paragraphs[2] += " The quartermaster mentioned a xylophonist once."
        (root / f"doc{i:02}.md").write_text(
            f"# Doc {i}\n\n## Part\n\n" + "\n\n".join(paragraphs) + "\n"
        )


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[apsw.Connection, Path]:
    base = tmp_path_factory.mktemp("retrieve")
    write_docs(base / "docs")
    db = open_database(base / "index.db")
    options = IndexOptions(policy=ChunkingPolicy(target_tokens=48))
    index_paths(db, BagOfWordsEmbedder(), [base / "docs"], options)
    return db, (base / "docs").resolve()


def test_a_near_duplicate_paragraph_finds_the_original_first(indexed) -> None:
    db, docs = indexed
    query = (
        "the keeper of the lighthouse logged each passing ship in his leather ledger, "
        "noting weather and tide and the colour of every sail before lighting the lamp"
    )
    hits = search(db, BagOfWordsEmbedder(), query, k=5)
    assert hits[0].path == str(docs / "doc17.md")
    assert "lighthouse keeper" in hits[0].text
    assert hits[0].vector_similarity is not None and hits[0].keyword_rank == 1
    assert hits[0].heading_path == "Doc 17 > Part"
    embedded = f"Doc 17 > Part\n{hits[0].text}"  # what the index embedded, and hashed
    assert hits[0].text_hash == hashlib.sha256(embedded.encode()).hexdigest()
    assert hits[0].start_line is not None and hits[0].end_line >= hits[0].start_line
    assert hits[0].location.startswith(f"{docs / 'doc17.md'}:{hits[0].start_line}")
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_bm25_finds_an_exact_rare_word(indexed) -> None:
    db, docs = indexed
    hits = search(db, BagOfWordsEmbedder(), "who is the xylophonist?", k=3)
    assert hits[0].path == str(docs / "doc29.md")
    assert hits[0].keyword_rank == 1
    assert "xylophonist" in hits[0].snippet


@pytest.mark.parametrize(
    "query",
    [
        'unbalanced "quote',
        "AND OR NOT",
        "NEAR(apple banana, 2)",
        "title:apple",
        "-kiwi +mango",
        "apple*",
        "(((",
        "c++ && c#",
        "^caret {brace} [bracket]",
        "'single' \"double\"",
        "日本語 ünïcödé",
        "\x00 null",
    ],
)
def test_user_text_never_breaks_the_fts_query(indexed, query: str) -> None:
    db, _ = indexed
    keyword_search(db, query, 10)  # must not raise
    search(db, BagOfWordsEmbedder(), query, k=3)


def test_fts_expression_quotes_every_word() -> None:
    expression = match_expression(query_terms('say "hi" AND bye'))
    assert expression == '"say" OR "hi" OR "and" OR "bye"'
    assert match_expression(query_terms("  ?!  ")) is None


def test_keywords_leave_out_stop_words_but_not_written_terms() -> None:
    assert keyword_terms("How do I undo the last commit, and why?") == ["undo", "last", "commit"]
    assert keyword_terms("what does --all do with core.editor") == ["all", "core", "editor"]
    assert keyword_terms("is -a the same as --no-edit") == ["a", "same", "no", "edit"]
    assert keyword_terms("What is it?") == ["what", "is", "it"]  # all stop words: keep them


def test_a_chunk_holding_only_stop_words_is_not_a_keyword_hit(indexed) -> None:
    """"the", "is", "who", "a", "of", "and", "in" fill the corpus; asked with them, only the
    chunk with the rare word matches at all."""
    db, _ = indexed
    ranked = keyword_search(db, "who is the one in a xylophonist of the and", 50)
    rows = [row[0] for row in db.execute(
        "SELECT s.rel_path FROM chunks c JOIN sources s ON s.id = c.source_id WHERE c.id IN "
        f"({', '.join('?' * len(ranked))})", ranked
    )]  # fmt: skip
    assert rows == ["doc29.md"]


def test_rrf_weights_let_one_ranking_count_for_less() -> None:
    keyword, vector = [1, 2, 3], [3, 2, 1]
    assert [c for c, _ in fuse_rankings([keyword, vector])] == [1, 3, 2]  # a tie: keyword's
    assert [c for c, _ in fuse_rankings([vector, keyword])] == [3, 1, 2]
    assert [c for c, _ in fuse_rankings([vector, keyword], weights=(0.5, 1))] == [1, 2, 3]
    assert [c for c, _ in fuse_rankings([keyword, vector], weights=(1, 0))] == [1, 2, 3]
    fused = fuse_rankings([keyword, vector], weights=(1, 0.5))
    assert fused[0] == (1, pytest.approx(1 / 61 + 0.5 / 63))
    with pytest.raises(ValueError):
        fuse_rankings([keyword, vector], weights=(1,))


def test_rrf_rewards_agreement_between_rankings() -> None:
    fused = fuse_rankings([[1, 2, 3], [3, 4, 1]])
    assert [chunk_id for chunk_id, _ in fused] == [1, 3, 2, 4]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 63)


def test_snippet_centres_on_a_query_word() -> None:
    text = ("filler words " * 60) + "the important needle is here " + ("more filler " * 40)
    snippet = make_snippet(text, ["needle"], width=80)
    assert "needle" in snippet and snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) <= 82


def test_search_refuses_another_model(indexed) -> None:
    db, _ = indexed
    with pytest.raises(ModelMismatchError, match="--rebuild"):
        search(db, BagOfWordsEmbedder(fingerprint="another"), "apple", k=3)


def test_search_on_an_empty_index(tmp_path: Path) -> None:
    db = open_database(tmp_path / "empty.db")
    with pytest.raises(EmptyIndexError, match="gritdesk index"):
        search(db, BagOfWordsEmbedder(), "anything")
    assert search(db, BagOfWordsEmbedder(), "   ") == []


def test_hit_location_formats() -> None:
    def hit(start, end, page):
        return Hit(1, "/d/f", start, end, page, "", 0.1, "", "")

    assert hit(3, 9, None).location == "/d/f:3-9"
    assert hit(4, 4, None).location == "/d/f:4"
    assert hit(None, None, 2).location == "/d/f:p2"
    assert hit(None, None, None).location == "/d/f"
