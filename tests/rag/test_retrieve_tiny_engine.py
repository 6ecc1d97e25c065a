"""Retrieval sanity with the real engine: a tiny llama GGUF with a real SentencePiece vocab.

Random weights still place lexically similar texts closer than unrelated ones, so a
near-duplicate must find its original by vector search alone, and BM25 must find an
exact rare word whatever the vectors say.
"""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from gritdesk.ingest.indexer import index_paths
from gritdesk.rag.retrieve import search
from gritdesk.runtime.recipes import RETRIEVAL_INSTRUCTION
from gritdesk.store.connection import open_database
from gritdesk.store.model_record import read_model_record
from gritdesk.store.vectors import nearest_chunks

TARGET = (
    "The lighthouse keeper logged every passing ship in a leather ledger, noting the "
    "weather, the tide and the colour of each sail before the lamp was lit at dusk."
)
OTHERS = [
    "Quarterly revenue grew by four percent while operating costs stayed flat.",
    "To install the package, run the setup script and restart the terminal.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The committee postponed the vote on the new zoning rules until spring.",
    "Preheat the oven, whisk the eggs with sugar, then fold in the flour gently.",
    "Our hiking route climbs through pine forest before reaching the ridge.",
    "The compiler reports an error when a variable is used before assignment.",
    "Migratory birds navigate using the earth's magnetic field and the stars.",
    "The orchestra rehearsed the symphony twice; the xylophonist arrived late.",
    "Interest rates rose again, and mortgage applications fell sharply.",
]

ALL_NOTES = [*OTHERS[:5], TARGET, *OTHERS[5:]]
TARGET_FILE = f"note{ALL_NOTES.index(TARGET):02}.txt"
RARE_WORD_FILE = f"note{next(i for i, t in enumerate(ALL_NOTES) if 'xylophonist' in t):02}.txt"


@pytest.fixture(scope="module")
def indexed(tiny_engine, tmp_path_factory: pytest.TempPathFactory) -> tuple[apsw.Connection, Path]:
    base = tmp_path_factory.mktemp("tiny-retrieve")
    docs = base / "docs"
    docs.mkdir()
    for i, text in enumerate(ALL_NOTES):
        (docs / f"note{i:02}.txt").write_text(text + "\n")
    db = open_database(base / "index.db")
    report = index_paths(db, tiny_engine, [docs])
    assert report.indexed == len(OTHERS) + 1 and report.errors == []
    return db, docs.resolve()


def test_the_index_records_the_engine(indexed, tiny_engine) -> None:
    db, _ = indexed
    record = read_model_record(db)
    assert record.fingerprint == tiny_engine.fingerprint
    assert record.embedding_dim == tiny_engine.embedding_dim
    assert record.path == str(tiny_engine.path)


def test_a_near_duplicate_finds_its_original_first(indexed, tiny_engine) -> None:
    db, docs = indexed
    query = (
        "The lighthouse keeper logged each passing ship in a leather ledger, noting "
        "the weather, the tide and the colour of every sail before the lamp was lit."
    )
    vector = tiny_engine.embed_queries([query], RETRIEVAL_INSTRUCTION)[0]
    by_vector = nearest_chunks(db, vector, 3)
    target_id = db.execute(
        "SELECT c.id FROM chunks c JOIN sources s ON s.id = c.source_id WHERE s.rel_path = ?",
        (TARGET_FILE,),
    ).fetchone()[0]
    assert by_vector[0][0] == target_id  # the vectors alone rank it first

    hits = search(db, tiny_engine, query, k=3)
    assert hits[0].path == str(docs / TARGET_FILE)
    assert hits[0].location == f"{docs / TARGET_FILE}:1"


def test_bm25_finds_an_exact_rare_word(indexed, tiny_engine) -> None:
    db, docs = indexed
    hits = search(db, tiny_engine, "xylophonist", k=3)
    assert hits[0].path == str(docs / RARE_WORD_FILE)
    assert hits[0].keyword_rank == 1
