"""The KV admission rule (store/kv_cache.py): indexing writes at most the budget, a miss at
answer time is computed, admitted and reused, and blobs answers used outlive those they
did not."""

from __future__ import annotations

from pathlib import Path

import pytest

from gritdesk.ingest.chunk import text_digest
from gritdesk.ingest.indexer import IndexOptions, index_paths
from gritdesk.rag.answer import Answerer, AskOptions
from gritdesk.rag.kv_saving_embedder import KvSavingEmbedder
from gritdesk.runtime.engine import Engine, GenerationOptions
from gritdesk.store import kv_cache
from gritdesk.store.connection import open_database
from gritdesk.store.kv_cache import KvCacheStore

TOPICS = (
    "invoices and the two signatures finance asks for",
    "the cafeteria closing early on summer Fridays",
    "the Aurora release after the security review",
    "travel costs refunded up to a nightly limit",
    "laptops replaced every four years by the helpdesk",
    "the quarterly report sent to every region lead",
    "mentors assigned to each new team member",
    "exports of the archive to the backup folder",
)


def write_corpus(folder: Path) -> list[str]:
    folder.mkdir()
    texts = []
    for i, topic in enumerate(TOPICS):
        text = f"Note {i} is about {topic}, written down for whoever asks later."
        (folder / f"note-{i}.txt").write_text(text + "\n")
        texts.append(text)
    return texts


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes of every blob file written (evicted ones too), in order."""
    sizes: list[int] = []
    real = kv_cache.write_blob

    def counting(*args: object, **kwargs: object) -> int:
        n = real(*args, **kwargs)  # type: ignore[arg-type]
        sizes.append(n)
        return n

    monkeypatch.setattr(kv_cache, "write_blob", counting)
    return sizes


def one_blob_bytes(engine: Engine, text: str) -> int:
    _, states = engine.embed_documents_with_kv([text])
    return len(states[0].data) + 1024  # + the header, generously


def test_indexing_a_corpus_bigger_than_the_budget_writes_at_most_the_budget(
    tiny_engine: Engine, tmp_path: Path, written: list[int]
) -> None:
    texts = write_corpus(tmp_path / "docs")
    db = open_database(tmp_path / "index.db")
    budget = int(one_blob_bytes(tiny_engine, texts[0]) * 2.5)  # the corpus is ~3x the budget
    store = KvCacheStore(db, tmp_path / "kv", budget_bytes=budget)
    embedder = KvSavingEmbedder(tiny_engine, store)
    report = index_paths(
        db, embedder, [tmp_path / "docs"], IndexOptions(model_path=str(tiny_engine.path))
    )
    assert report.chunks_written == len(TOPICS)
    assert embedder.saved == 2 and embedder.skipped == len(TOPICS) - 2
    assert sum(written) <= budget  # nothing written only to be evicted again
    assert len(written) == embedder.saved == store.stats().blobs
    # a second run adds a file: its KV goes into what room is left, if it fits, no more
    (tmp_path / "docs" / "note-9.txt").write_text("A ninth note about the parking garage.\n")
    index_paths(db, embedder, [tmp_path / "docs"], IndexOptions(model_path=str(tiny_engine.path)))
    assert sum(written) == store.stats().bytes <= budget


def test_a_miss_is_computed_admitted_and_reused(tiny_engine: Engine, tmp_path: Path) -> None:
    texts = write_corpus(tmp_path / "docs")
    db = open_database(tmp_path / "index.db")
    budget = int(one_blob_bytes(tiny_engine, texts[0]) * 2.5)
    store = KvCacheStore(db, tmp_path / "kv", budget_bytes=budget)
    embedder = KvSavingEmbedder(tiny_engine, store)
    index_paths(db, embedder, [tmp_path / "docs"], IndexOptions(model_path=str(tiny_engine.path)))
    kept = {row[0] for row in db.execute("SELECT text_hash FROM kv_blobs")}
    missing = next(t for t in texts if text_digest(t) not in kept)  # indexed without its KV
    answerer = Answerer(db, tiny_engine, store)
    options = AskOptions(k=1, generation=GenerationOptions(max_tokens=2))

    def ask() -> str:
        prepared = answerer.prepare(missing, options)
        assert [s.hit.text for s in prepared.sources] == [missing]
        "".join(answerer.stream(prepared))
        return prepared.sources[0].kv

    assert ask() == "computed"
    hits = db.execute(
        "SELECT hits FROM kv_blobs WHERE text_hash = ?", (text_digest(missing),)
    ).fetchone()
    assert hits == (1,)  # admitted (evicting an index-time blob no answer had used)
    assert store.stats().bytes <= store.budget_bytes
    assert ask() == "cached"
    assert db.execute(
        "SELECT hits FROM kv_blobs WHERE text_hash = ?", (text_digest(missing),)
    ).fetchone() == (2,)


def test_blobs_answers_used_survive_eviction_over_unused(
    tiny_engine: Engine, tmp_path: Path
) -> None:
    texts = [f"Chunk number {i} talks about topic {i} at some length." for i in range(4)]
    _, states = tiny_engine.embed_documents_with_kv(texts)
    sig = tiny_engine.kv_signature
    keys = [text_digest(t) for t in texts]
    db = open_database(tmp_path / "index.db")
    store = KvCacheStore(db, tmp_path / "kv", budget_bytes=int((len(states[0].data) + 1024) * 2.5))

    def put(i: int, by: kv_cache.Admission) -> bool:
        return store.put(keys[i], sig, states[i].tokens, states[i].data, by=by)

    def present(i: int) -> bool:
        row = db.execute("SELECT 1 FROM kv_blobs WHERE text_hash = ?", (keys[i],)).fetchone()
        return row is not None

    assert put(0, "index")
    assert store.get(keys[0], sig, states[0].tokens) is not None  # an answer used blob 0
    assert put(1, "index")  # newer than blob 0 in every respect, but never used
    assert not put(2, "index")  # the budget is full: indexing evicts nothing
    assert present(0) and present(1) and not present(2)
    assert put(2, "answer")  # an answer's miss: evicts the unused blob, not the older used one
    assert present(0) and not present(1) and present(2)
    assert put(3, "answer")  # only used blobs left: the least recently used goes
    assert not present(0) and present(2) and present(3)
    assert store.stats().bytes <= store.budget_bytes
