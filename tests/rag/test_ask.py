"""`gritdesk ask` end to end on the tiny model: citations, JSON, cache accounting, context fit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gritdesk.ingest.indexer import IndexOptions, index_paths
from gritdesk.rag.answer import Answerer, AskOptions
from gritdesk.rag.kv_saving_embedder import KvSavingEmbedder
from gritdesk.rag.layouts import CacheMode, Placement
from gritdesk.runtime.engine import Engine, EngineSettings, GenerationOptions
from gritdesk.store.connection import open_database
from gritdesk.store.kv_cache import KvCacheStore

CORPUS = Path(__file__).resolve().parents[2] / "app" / "gritdesk" / "demo_corpus"
# a question made of the answer's own words, so retrieval with a random-weight model still works
QUESTION = "Hotel costs are refunded up to how many euros a night in Europe?"
ANSWER_FILE = "travel-policy.md"


def gritdesk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from gritdesk.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )


@pytest.fixture(scope="module")
def indexed_db(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Path:
    db = tmp_path_factory.mktemp("ask") / "index.db"
    proc = gritdesk("index", str(CORPUS), "--db", str(db), "--model", str(tiny_model_path))
    assert proc.returncode == 0, proc.stderr
    return db


def test_ask_json_is_complete_and_cites_the_answer_first(indexed_db: Path) -> None:
    proc = gritdesk("ask", QUESTION, "--db", str(indexed_db), "--json", "--max-tokens", "12")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert isinstance(out["answer"], str) and out["answer"]
    first = out["sources"][0]
    assert first["path"].endswith(ANSWER_FILE)
    chunk_lines = (
        (CORPUS / ANSWER_FILE).read_text().splitlines()[first["start_line"] - 1 : first["end_line"]]
    )
    assert any("140 euros a night" in line for line in chunk_lines)
    assert {"path", "start_line", "end_line", "score", "kv"} <= set(first)
    timings = out["timings"]
    for key in (
        "retrieval_ms",
        "time_to_first_token_ms",
        "prompt_tokens_computed",
        "prompt_tokens_reused",
        "generated_tokens_per_s",
        "total_ms",
    ):
        assert key in timings, key
    assert timings["generated_tokens"] >= 1
    assert timings["prompt_tokens_reused"] > 0  # the index saved the chunks' KV: reused here
    assert all(s["kv"] == "cached" for s in out["sources"])


def test_ask_text_lists_numbered_citations(indexed_db: Path) -> None:
    proc = gritdesk("ask", QUESTION, "--db", str(indexed_db), "--max-tokens", "8")
    assert proc.returncode == 0, proc.stderr
    sources = proc.stdout.split("Sources:")[1].strip().splitlines()
    assert sources[0].startswith("[1] ") and ANSWER_FILE in sources[0]
    assert all(line.startswith(f"[{i}] ") for i, line in enumerate(sources, 1))


def test_bad_cache_mode_is_a_clear_error(indexed_db: Path) -> None:
    proc = gritdesk("ask", QUESTION, "--db", str(indexed_db), "--cache", "sideways")
    assert proc.returncode == 2 and "cache mode 'sideways'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cache_modes_account_for_reused_and_computed_tokens(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    db = open_database(tmp_path / "index.db")
    with Engine(tiny_model_path, EngineSettings(n_ctx=2048)) as engine:
        store = KvCacheStore(db, tmp_path / "kv")
        index_paths(
            db, KvSavingEmbedder(engine, store), [CORPUS], IndexOptions(model_path=str(engine.path))
        )
        answerer = Answerer(db, engine, store)
        results = {}
        for mode in CacheMode:
            for placement in Placement:
                options = AskOptions(
                    k=2,
                    cache_mode=mode,
                    placement=placement,
                    generation=GenerationOptions(max_tokens=4),
                )
                prepared = answerer.prepare(QUESTION, options)
                text = "".join(answerer.stream(prepared))
                results[mode, placement] = (prepared.timings, text)
        off = results[CacheMode.OFF, Placement.CONSECUTIVE][0]
        doc = results[CacheMode.DOC, Placement.CONSECUTIVE][0]
        query = results[CacheMode.QUERY, Placement.CONSECUTIVE][0]
        assert off.prompt_tokens_reused == 0 and off.kv_hits == 0
        assert doc.kv_hits == 2 and doc.prompt_tokens_reused > 0
        assert doc.prompt_tokens_computed < off.prompt_tokens_computed / 3
        assert query.kv_misses == 1 and query.prompt_tokens_reused == 0  # queries are not stored
        assert results[CacheMode.DOC_QUERY, Placement.CONSECUTIVE][0].kv_hits == 2


def test_context_budget_drops_lowest_ranked_chunks(indexed_db: Path) -> None:
    proc = gritdesk(
        "ask",
        QUESTION,
        "--db",
        str(indexed_db),
        "--json",
        "-k",
        "8",
        "--ctx",
        "320",
        "--max-tokens",
        "8",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["notices"] and "left out" in out["notices"][0]
    assert 1 <= len(out["sources"]) < 8
    assert out["sources"][0]["path"].endswith(ANSWER_FILE)


def test_quantized_kv_type_and_cache_stats(tiny_model_path: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "kv.db")
    assert (
        gritdesk("index", str(CORPUS), "--db", db, "--model", str(tiny_model_path)).returncode == 0
    )
    proc = gritdesk("ask", QUESTION, "--db", db, "--kv-type", "q8_0", "--json", "--max-tokens", "4")
    assert proc.returncode == 0, proc.stderr
    sources = json.loads(proc.stdout)["sources"]
    assert all(s["kv"] == "computed" for s in sources)  # f16 blobs do not fit a q8_0 cache
    proc = gritdesk("cache", "stats", "--db", db)
    assert proc.returncode == 0, proc.stderr
    measured = {
        line.split(":")[0].strip(): float(line.rsplit(",", 1)[1].split()[0])
        for line in proc.stdout.splitlines()
        if line.strip().startswith(("f16:", "q8_0:")) and "measured" in line
    }
    assert set(measured) == {"f16", "q8_0"}
    assert measured["q8_0"] < measured["f16"]
    assert "q4_0:" in proc.stdout  # the computed size for every KV type
    proc = gritdesk("cache", "clear", "--db", db)
    assert proc.returncode == 0 and "removed" in proc.stdout
    assert "blobs: 0" in gritdesk("cache", "stats", "--db", db).stdout


def test_rerank_scores_and_orders_sources(indexed_db: Path, tiny_model_path: Path) -> None:
    from gritdesk.rag.rerank import relevance_score

    proc = gritdesk(
        "ask",
        QUESTION,
        "--db",
        str(indexed_db),
        "--rerank",
        "--json",
        "-k",
        "3",
        "--max-tokens",
        "4",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    scores = [s["rerank_score"] for s in out["sources"]]
    assert all(isinstance(s, float) for s in scores) and len(scores) == 3
    assert scores == sorted(scores, reverse=True)
    assert out["timings"]["rerank_ms"] > 0
    # the score is the model's "yes" logit after the GritLM relevance prompt, recomputed here
    db = open_database(indexed_db)
    first = out["sources"][0]
    (chunk_text,) = db.execute(
        "SELECT c.text FROM chunks c JOIN sources s ON s.id = c.source_id "
        "WHERE s.rel_path = ? AND c.start_line = ?",
        (Path(first["path"]).name, first["start_line"]),
    ).fetchone()
    with Engine(tiny_model_path, EngineSettings(n_ctx=4096)) as engine:
        assert abs(relevance_score(engine, QUESTION, chunk_text) - scores[0]) < 1e-2
