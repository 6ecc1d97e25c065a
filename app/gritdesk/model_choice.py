"""From a model as the user names it (a path, or an installed model's name) to a file.

`Settings.model` holds what the flag, GRITDESK_MODEL or config.toml said; when none did,
the model `gritdesk models pull/add` installed is used (if it is the only one, or the
default GritLM). A missing model is an error that says how to get one.
"""

from __future__ import annotations

import os
from pathlib import Path

from gritdesk.settings import ConfigError, config_path

GET_A_MODEL = (
    "no model given. Pass --model PATH.gguf (or an installed model's name), set "
    'GRITDESK_MODEL, or set `model = "..."` in {config}. '
    "To get GritLM-7B: `gritdesk models pull gritlm-7b` (needs internet once); "
    "to try gritdesk offline: `gritdesk models synth tiny` (a synthetic model, answers are noise)."
)


def _model_ref(value: str | os.PathLike[str]) -> Path:
    """A path as given, an installed model's name (`gritlm-7b`, `gritlm-7b:Q8_0`), or one
    found in another tool's store (`ollama:qwen2.5:3b`, `lmstudio:...`, `hf:...`)."""
    text = os.fspath(value)
    from gritdesk.models.found import is_found_name, locate_found

    if is_found_name(text) and not Path(text).exists():
        return locate_found(text).path
    path = Path(text).expanduser()
    if path.exists() or "/" in text or text.endswith(".gguf"):
        return path
    from gritdesk.models.catalog import load_catalog
    from gritdesk.models.installed import InstalledModels
    from gritdesk.models.library import locate_model

    return locate_model(text, InstalledModels(), load_catalog()).path


def resolve_model(configured: str | os.PathLike[str] | None) -> Path | None:
    """The configured model as a file, else the installed default, else None."""
    if configured:
        return _model_ref(configured)
    from gritdesk.models.catalog import load_catalog
    from gritdesk.models.installed import InstalledModels
    from gritdesk.models.library import default_model

    installed = default_model(InstalledModels(), load_catalog())
    return Path(installed.path) if installed is not None else None


# The embedder paired with a chat model whose recipe is not trained to embed (SmolLM2):
# all-MiniLM-L6-v2 beats SmolLM2's own vectors and keyword search alone on a real corpus
# (benchmarks/retrieval_eval.py), at 22M parameters.
PAIR_EMBEDDER = "minilm-l6-v2"


def pair_embedder(setting: str) -> Path | None:
    """The model that embeds beside a chat model not trained to: None for "self", or for
    "auto" when the pair embedder is not installed (`gritdesk models pull minilm-l6-v2`)."""
    if setting == "self":
        return None
    if setting != "auto":
        return _model_ref(setting)
    from gritdesk.models.catalog import load_catalog
    from gritdesk.models.installed import InstalledModels
    from gritdesk.models.library import find_installed

    installed = find_installed(PAIR_EMBEDDER, InstalledModels(), load_catalog())
    return Path(installed.path) if installed is not None and installed.exists() else None


def default_chat_model() -> Path | None:
    """The installed model that answers when the index's model only embeds (MiniLM)."""
    from gritdesk.models.catalog import load_catalog
    from gritdesk.models.installed import InstalledModels
    from gritdesk.models.library import default_model

    installed = default_model(InstalledModels(), load_catalog(), generating=True)
    return Path(installed.path) if installed is not None else None


def require_model(configured: str | os.PathLike[str] | None) -> Path:
    path = resolve_model(configured)
    if path is None:
        raise ConfigError(GET_A_MODEL.format(config=config_path()))
    return path
