"""The vector ranking's weight is measured on the index itself: a random-weight model that
claims to embed (the tiny test model runs the GritLM recipe) gets no say over keyword
search, while a trained embedder (all-MiniLM-L6-v2) keeps full weight. The corpus is text
nobody here wrote: the docstrings of Python's standard library."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from gritdesk.rag.fusion import files_first
from gritdesk.rag.index_service import IndexService
from gritdesk.rag.retrieve import fusion_weights, keyword_search, search
from gritdesk.rag.vector_probe import FULL_WEIGHT_SKILL, NO_WEIGHT_SKILL, weight_for
from gritdesk.session import open_session
from gritdesk.settings import Settings
from gritdesk.store.chunk_rows import chunk_sources
from gritdesk.store.vector_worth import stored_vector_worth

MODULES = ["argparse", "csv", "json", "logging", "sqlite3", "tarfile", "zipfile", "textwrap",
           "shutil", "heapq", "bisect", "difflib"]  # fmt: skip
QUESTIONS = [
    "how do I read rows from a comma separated file",
    "compress files into an archive",
    "find the closest matching strings",
    "keep a list sorted while inserting",
]


def stdlib_docs(folder: Path, chars: int = 2400) -> Path:
    """One text file per module: its docstring and its public functions' and classes'."""
    folder.mkdir()
    for name in MODULES:
        module = importlib.import_module(name)
        parts = [inspect.getdoc(module) or ""]
        for attr, value in sorted(vars(module).items()):
            if not attr.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value)):
                doc = inspect.getdoc(value)
                if doc and getattr(value, "__module__", name).startswith(name):
                    parts.append(f"{attr}\n\n{doc}")
        (folder / f"{name}.txt").write_text("\n\n".join(parts)[:chars])
    return folder


def indexed(model: Path, db: Path, corpus: Path):
    session = open_session(Settings(db=db, model=str(model), context=1024))
    IndexService.of_session(session, save_kv=False).run([corpus])
    return session


def test_weight_ramps_between_the_two_skills() -> None:
    assert weight_for(NO_WEIGHT_SKILL - 0.1) == 0.0
    assert weight_for(FULL_WEIGHT_SKILL + 0.1) == 1.0
    assert 0.0 < weight_for((NO_WEIGHT_SKILL + FULL_WEIGHT_SKILL) / 2) < 1.0


@pytest.mark.parametrize(
    ("fixture", "trained"), [("tiny_model_path", False), ("minilm_path", True)]
)
def test_the_index_measures_what_its_vectors_are_worth(
    fixture: str, trained: bool, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    corpus = stdlib_docs(tmp_path / "docs")
    session = indexed(request.getfixturevalue(fixture), tmp_path / "index.db", corpus)
    try:
        engine, db = session.engine, session.db
        assert engine is not None and engine.recipe.trained_to_embed  # both claim to embed
        worth = stored_vector_worth(db)
        assert worth is not None and worth.fingerprint == engine.fingerprint
        assert worth.probes >= 6
        if trained:
            assert worth.skill >= FULL_WEIGHT_SKILL and fusion_weights(engine, db) == (1.0, 1.0)
        else:
            assert worth.skill <= NO_WEIGHT_SKILL and fusion_weights(engine, db) == (1.0, 0.0)
            reordered_by_noise = 0
            for question in QUESTIONS:  # noise cannot reorder what keywords found
                keyword = keyword_search(db, question, 50)
                listed = files_first([keyword], chunk_sources(db, keyword))
                expected = [c for c, _ in listed[:4]]
                hits = search(db, engine, question, 4)
                assert [h.chunk_id for h in hits][: len(expected)] == expected, question
                naive = search(db, engine, question, 4, weights=(1.0, 1.0))
                reordered_by_noise += [h.chunk_id for h in naive][: len(expected)] != expected
            assert reordered_by_noise  # the weight its recipe claims would have let noise in
    finally:
        session.close()
