"""A generated corpus for checking the index estimate: many files of several kinds and
sizes (more than the estimate samples), deterministic for a given seed."""

from __future__ import annotations

import random
from pathlib import Path

WORDS = (
    "otter river kettle copper survey meadow lantern harbour quartz willow basalt cipher "
    "ledger orchard falcon granite tundra compass saffron ember glacier thistle"
).split()


def _prose(rng: random.Random, size: int) -> str:
    paragraphs, total = [], 0
    while total < size:
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(15, 120)))
        paragraphs.append(words.capitalize() + ".")
        total += len(words) + 3
    return "\n\n".join(paragraphs) + "\n"


def _markdown(rng: random.Random, size: int) -> str:
    parts, total = [], 0
    while total < size:
        section = f"## {rng.choice(WORDS).title()} {rng.choice(WORDS)}\n\n" + _prose(rng, 600)
        parts.append(section)
        total += len(section)
    return "# Notes\n\n" + "\n".join(parts)


def _python(rng: random.Random, size: int) -> str:
    lines, total = [], 0
    while total < size:
        name = f"{rng.choice(WORDS)}_{rng.randint(0, 999)}"
        body = f"def {name}(x):\n    \"\"\"{rng.choice(WORDS)} {rng.choice(WORDS)}\"\"\"\n"
        body += f"    return x * {rng.randint(1, 9)} + {rng.randint(0, 99)}\n\n"
        lines.append(body)
        total += len(body)
    return "".join(lines)


def build_corpus(root: Path, files: int = 90, seed: int = 7) -> int:
    """Write `files` files under `root` (in a few folders); returns their total bytes."""
    rng = random.Random(seed)
    makers = {".md": _markdown, ".txt": _prose, ".py": _python}
    total = 0
    for i in range(files):
        suffix = rng.choice(list(makers))
        size = int(rng.lognormvariate(7.8, 1.0))  # ~2.4 KB median, a long tail to ~40 KB
        size = min(max(size, 120), 40_000)
        path = root / f"part{i % 4}" / f"file{i:03}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(makers[suffix](rng, size))
        total += path.stat().st_size
    return total
