"""A real index built by `gritdesk index` on a few files, and `gritdesk serve` over it."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.server_process import CLI, ServerProcess

CORPUS = Path(__file__).resolve().parents[2] / "app" / "gritdesk" / "demo_corpus"
# a question made of the answer's own words, so retrieval with a random-weight model works
QUESTION = "Hotel costs are refunded up to how many euros a night in Europe?"
ANSWER_FILE = "travel-policy.md"


def gritdesk(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo corpus in two folders: `policies/` holds the answer, `other/` the rest."""
    root = tmp_path_factory.mktemp("docs")
    (root / "policies").mkdir()
    (root / "other").mkdir()
    for path in CORPUS.iterdir():
        if path.is_file():
            folder = "policies" if path.name == ANSWER_FILE else "other"
            shutil.copy(path, root / folder / path.name)
    return root


@pytest.fixture(scope="session")
def indexed_db(tmp_path_factory: pytest.TempPathFactory, docs: Path, tiny_model_path: Path) -> Path:
    db = tmp_path_factory.mktemp("server-index") / "index.db"
    proc = gritdesk("index", str(docs), "--db", str(db), "--model", str(tiny_model_path))
    assert proc.returncode == 0, proc.stderr
    return db


@pytest.fixture(scope="session")
def server(indexed_db: Path) -> Iterator[ServerProcess]:
    """One server for the tests that do not need special flags (no API key)."""
    process = ServerProcess("--db", str(indexed_db))
    yield process
    process.stop()


@pytest.fixture(scope="session")
def model_id(tiny_model_path: Path) -> str:
    return tiny_model_path.name.removesuffix(".gguf")
