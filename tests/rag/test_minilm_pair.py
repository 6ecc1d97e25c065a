"""The real all-MiniLM-L6-v2 embeds through the CLI (`index`, `search`), and `ask` answers in
pair mode with the real SmolLM2-135M: the index saves no KV (an encoder has none); the chat
model computes a chunk's KV the first time an answer uses it, and later answers restore it
(Doc Caching in pair mode)."""

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
    def ask(*extra: str) -> dict:
        proc = gritdesk(
            "ask", QUESTION, "--db", str(minilm_db), "--chat-model", str(smollm2_path),
            "--json", "-k", "3", *extra,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        said = " ".join(proc.stderr.split())
        assert (
            "pair mode: all-MiniLM-L6-v2.F32.gguf embeds, SmolLM2-135M-Instruct.Q4_1.gguf" in said
        )
        return json.loads(proc.stdout)

    plain = ask()  # pair mode reads the passages as text by default
    assert FACT in plain["answer"] and plain["sources"][0]["path"].endswith("travel-policy.md")
    assert {s["kv"] for s in plain["sources"]} == {"fresh"}
    first = ask("--cache", "doc")
    assert first["cache_mode"] == "doc"
    # SmolLM2 reads focused sentences: a source it reads none of stays "fresh" (not prefilled)
    assert {s["kv"] for s in first["sources"]} - {"fresh"} == {"computed"}  # the miss, saved
    assert first["timings"]["prompt_tokens_reused"] == 0
    second = ask("--cache", "doc")
    assert {s["kv"] for s in second["sources"]} - {"fresh"} == {"cached"}
    assert second["timings"]["prompt_tokens_reused"] > 0
    assert second["answer"] == first["answer"]  # restored KV = the KV computed


def test_ask_without_a_chat_model_answers_with_the_installed_one(
    minilm_db: Path, smollm2_path: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env_data = {"GRITDESK_DATA_DIR": str(data)}
    proc = gritdesk_env(env_data, "ask", QUESTION, "--db", str(minilm_db))  # nothing installed
    assert proc.returncode == 2 and "--chat-model" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = gritdesk_env(env_data, "models", "add", str(smollm2_path))
    assert proc.returncode == 0, proc.stderr
    proc = gritdesk_env(env_data, "ask", QUESTION, "--db", str(minilm_db), "-k", "3")
    assert proc.returncode == 0, proc.stderr
    assert FACT in proc.stdout.partition("Sources:")[0]


def gritdesk_env(env: dict[str, str], *args: str):
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", "from gritdesk.cli import main; main()", *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, **env},
    )  # fmt: skip
