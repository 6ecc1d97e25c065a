"""GGUF models other tools already keep on this machine: Ollama, LM Studio, the Hugging Face
cache. Read only: gritdesk lists them, loads them in place, never moves or deletes them.

Names say where a model was found, so `--model` takes them as they are listed:

- `ollama:qwen2.5:3b`: Ollama's store, `<root>/manifests/<registry>/<namespace>/<model>/<tag>`
  (a JSON manifest; its layer of media type `application/vnd.ollama.image.model` names the
  GGUF blob `<root>/blobs/sha256-<hex>`). Root: `$OLLAMA_MODELS`, else `~/.ollama/models`.
  `ollama:NAME` means tag `latest` in `registry.ollama.ai/library`; `ollama:user/NAME:tag`
  another namespace, as `ollama pull` names them.
- `lmstudio:publisher/repo/file`: LM Studio's models folder, `~/.lmstudio/models` (older
  versions: `~/.cache/lm-studio/models`), laid out `<publisher>/<repo>/<file>.gguf`.
- `hf:org/name/file`: the Hugging Face hub cache, `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
  `~/.cache/huggingface/hub`, laid out `models--org--name/snapshots/<revision>/<file>.gguf`
  (files there are links into `blobs/`); the newest snapshot wins when several hold a file.

The file stem is left out of an LM Studio or Hugging Face name when the repository holds
one GGUF. Each folder walk is bounded (depth and entries), and a malformed manifest is
skipped, not fatal: these folders belong to other programs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from gritdesk.models.errors import ModelsError

OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
OLLAMA_REGISTRY = "registry.ollama.ai"
OLLAMA_NAMESPACE = "library"
MAX_ENTRIES = 10_000  # files looked at per store: a bound on a folder that is not what we think
MAX_MANIFEST_BYTES = 1 << 20
PREFIXES = ("ollama", "lmstudio", "hf")


class FoundModelError(ModelsError):
    """A name with a store prefix that names no model in that store."""


@dataclass(frozen=True)
class FoundModel:
    name: str  # as `--model` takes it: ollama:qwen2.5:3b, lmstudio:..., hf:...
    source: str  # "ollama", "lmstudio", "hf"
    path: Path

    @property
    def size(self) -> int | None:
        try:
            return self.path.stat().st_size
        except OSError:
            return None


@dataclass(frozen=True)
class Stores:
    """Where each tool keeps its models, from the environment and the home folder."""

    ollama: Path
    lmstudio: tuple[Path, ...]
    hf: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, home: Path | None = None) -> Stores:
        env = os.environ if env is None else env
        home = Path.home() if home is None else home
        ollama = Path(env["OLLAMA_MODELS"]) if env.get("OLLAMA_MODELS") else home / ".ollama/models"
        if env.get("HF_HUB_CACHE"):
            hf = Path(env["HF_HUB_CACHE"])
        elif env.get("HF_HOME"):
            hf = Path(env["HF_HOME"]) / "hub"
        else:
            hf = home / ".cache/huggingface/hub"
        lmstudio = (home / ".lmstudio/models", home / ".cache/lm-studio/models")
        return cls(ollama=ollama, lmstudio=lmstudio, hf=hf)


def found_models(stores: Stores | None = None) -> list[FoundModel]:
    """Every GGUF found in the three stores, by name."""
    stores = stores or Stores.from_env()
    models = [*_ollama(stores.ollama), *_lmstudio(stores.lmstudio), *_hf(stores.hf)]
    return sorted(models, key=lambda m: m.name)


def is_found_name(text: str) -> bool:
    prefix, sep, rest = text.partition(":")
    return bool(sep and rest) and prefix in PREFIXES


def locate_found(name: str, stores: Stores | None = None) -> FoundModel:
    """The model a store-prefixed name means; an Ollama name without a tag means `latest`."""
    prefix, _, rest = name.partition(":")
    wanted = {name}
    if prefix == "ollama" and ":" not in rest:
        wanted.add(f"{name}:latest")
    models = found_models(stores)
    for model in models:
        if model.name in wanted:
            return model
    same_store = [m.name for m in models if m.source == prefix]
    listed = ", ".join(same_store[:8]) if same_store else "none"
    raise FoundModelError(
        f"no model {name!r} found in the {prefix} store (found there: {listed}); "
        "`gritdesk models list` shows every model found on this machine"
    )


# --- Ollama ------------------------------------------------------------------------------


def _ollama(root: Path) -> Iterator[FoundModel]:
    manifests = root / "manifests"
    for manifest in _files(manifests, max_depth=4):
        parts = manifest.relative_to(manifests).parts
        if len(parts) != 4:  # registry / namespace / model / tag
            continue
        registry, namespace, model, tag = parts
        blob = _ollama_model_blob(root, manifest)
        if blob is None:
            continue
        if registry == OLLAMA_REGISTRY:
            short = model if namespace == OLLAMA_NAMESPACE else f"{namespace}/{model}"
        else:
            short = f"{registry}/{namespace}/{model}"
        yield FoundModel(f"ollama:{short}:{tag}", "ollama", blob)


def _ollama_model_blob(root: Path, manifest: Path) -> Path | None:
    try:
        if manifest.stat().st_size > MAX_MANIFEST_BYTES:
            return None
        layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers", [])
    except (OSError, ValueError, AttributeError):
        return None
    for layer in layers if isinstance(layers, list) else []:
        if not isinstance(layer, dict) or layer.get("mediaType") != OLLAMA_MODEL_LAYER:
            continue
        digest = str(layer.get("digest", ""))
        algorithm, _, hexdigest = digest.partition(":")
        if algorithm != "sha256" or not hexdigest.isalnum():
            return None
        blob = root / "blobs" / f"sha256-{hexdigest}"
        return blob if blob.is_file() else None
    return None


# --- LM Studio and the Hugging Face cache ------------------------------------------------


def _lmstudio(roots: tuple[Path, ...]) -> Iterator[FoundModel]:
    seen: set[str] = set()
    for root in roots:
        by_repo: dict[tuple[str, str], list[Path]] = {}
        for file in _files(root, max_depth=3, suffix=".gguf"):
            parts = file.relative_to(root).parts
            if len(parts) == 3:
                by_repo.setdefault((parts[0], parts[1]), []).append(file)
        for (publisher, repo), files in by_repo.items():
            for model in _named("lmstudio", f"{publisher}/{repo}", files):
                if model.name not in seen:  # the newer folder wins
                    seen.add(model.name)
                    yield model


def _hf(root: Path) -> Iterator[FoundModel]:
    try:
        repos = sorted(p for p in root.iterdir() if p.name.startswith("models--"))
    except OSError:
        return
    for repo in repos[:MAX_ENTRIES]:
        org_name = repo.name.removeprefix("models--").split("--", 1)
        if len(org_name) != 2:
            continue
        newest: dict[str, Path] = {}
        snapshots = repo / "snapshots"
        for file in sorted(_files(snapshots, max_depth=4, suffix=".gguf"), key=_mtime):
            newest[str(file.relative_to(snapshots).parts[1:])] = file  # later = newer
        yield from _named("hf", "/".join(org_name), sorted(newest.values()))


def _named(source: str, repo: str, files: list[Path]) -> Iterator[FoundModel]:
    if len(files) == 1:
        yield FoundModel(f"{source}:{repo}", source, files[0])
        return
    for file in files:
        yield FoundModel(f"{source}:{repo}/{file.stem}", source, file)


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def _files(root: Path, *, max_depth: int, suffix: str = "") -> Iterator[Path]:
    """Files (or links to files) under `root`, at most `max_depth` folders down and
    MAX_ENTRIES entries in all; unreadable folders are passed over."""
    count = 0
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            count += 1
            if count > MAX_ENTRIES:
                return
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    if depth + 1 < max_depth:
                        stack.append((path, depth + 1))
                elif entry.name.lower().endswith(suffix) and path.is_file():
                    yield path
            except OSError:
                continue
