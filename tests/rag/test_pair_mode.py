"""Pair mode: one GGUF embeds (here with the E5 recipe), another answers. The index holds no
KV of the answering model: an answer computes a chunk's KV with it on first use and saves it,
and the next answer restores it."""

from __future__ import annotations

import json
from pathlib import Path

from test_ask import CORPUS, QUESTION, gritdesk


def test_pair_mode_indexes_and_answers(
    tiny_model_path: Path, tiny_b_model_path: Path, tmp_path: Path
) -> None:
    db = str(tmp_path / "pair.db")
    embed_model = ("--model", str(tiny_b_model_path), "--recipe", "e5-mistral")
    proc = gritdesk("index", str(CORPUS), "--db", db, *embed_model, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["indexed"] == 5 and report["kv_saved"] == 0  # nothing to reuse across models

    pair = ("--db", db, "--recipe", "e5-mistral", "--chat-model", str(tiny_model_path))
    proc = gritdesk("ask", QUESTION, *pair, "--json", "--max-tokens", "8")  # off by default
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["cache_mode"] == "off" and out["answer"]
    assert out["sources"] and all(s["kv"] == "fresh" for s in out["sources"])
    assert out["timings"]["prompt_tokens_reused"] == 0
    assert "pair mode" in proc.stderr

    answers = []
    for expected in ("computed", "cached"):
        proc = gritdesk("ask", QUESTION, *pair, "--json", "--max-tokens", "8", "--cache", "doc")
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert out["cache_mode"] == "doc"
        # the tiny model (< 1B params) reads focused sentences: a source it reads none of
        # is not prefilled and stays "fresh"
        assert {s["kv"] for s in out["sources"]} - {"fresh"} == {expected}
        answers.append(out["answer"])
    assert out["timings"]["prompt_tokens_reused"] > 0
    assert answers[0] == answers[1]

    proc = gritdesk("search", QUESTION, "--db", db, "--recipe", "gritlm")
    assert proc.returncode == 2 and "recipe e5-mistral" in proc.stderr  # vectors not comparable
