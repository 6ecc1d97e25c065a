"""The real all-MiniLM-L6-v2 embeds through the CLI (`index`, `search`), and `ask` answers in
pair mode with the real SmolLM2-135M as `--chat-model`: no KV is saved or shared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_ask import CORPUS, QUESTION, gritdesk

FACT = "140"  # travel-policy.md: "refunded up to 140 euros a night in Europe"


@pytest.fixture(scope="module")
def minilm_db(tmp_path_factory: pytest.TempPathFactory, minilm_path: Path) -> Path:
    db = tmp_path_factory.mktemp("minilm") / "index.db"
    model = ("--model", str(minilm_path), "--recipe", "minilm")
    proc = gritdesk("index", str(CORPUS), "--db", str(db), *model, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["indexed"] == 5 and report["chunks_embedded"] >= 5
    assert report["kv_saved"] == 0  # an encoder has no KV to keep
    return db


def test_search_finds_the_passage(minilm_db: Path) -> None:
    proc = gritdesk("search", QUESTION, "--db", str(minilm_db), "-k", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    best = json.loads(proc.stdout)[0]
    assert best["path"].endswith("travel-policy.md") and f"{FACT} euros" in best["text"]


def test_ask_answers_in_pair_mode_with_smollm2(minilm_db: Path, smollm2_path: Path) -> None:
    proc = gritdesk(
        "ask", QUESTION, "--db", str(minilm_db), "--chat-model", str(smollm2_path),
        "--json", "-k", "3",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert FACT in out["answer"] and out["cache_mode"] == "off"
    assert out["sources"][0]["path"].endswith("travel-policy.md")
    assert out["timings"]["prompt_tokens_reused"] == 0
    said = " ".join(proc.stderr.split())
    assert "pair mode: all-MiniLM-L6-v2.F32.gguf embeds, SmolLM2-135M-Instruct.Q4_1.gguf" in said


def test_ask_without_a_chat_model_says_how(minilm_db: Path) -> None:
    proc = gritdesk("ask", QUESTION, "--db", str(minilm_db))  # the index's recipe: minilm
    assert proc.returncode == 2 and "--chat-model" in proc.stderr
    assert "Traceback" not in proc.stderr
