"""Where gritdesk keeps things on disk; one place so build.sh and the app agree.

The cache directory rule is the one build.sh uses:
``$GRITDESK_CACHE_DIR`` or ``$XDG_CACHE_HOME/gritdesk`` or ``~/.cache/gritdesk``.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "models"


def cache_dir() -> Path:
    """Build artefacts, the llama-cpp-python sdist, synthetic models, KV blobs."""
    explicit = os.environ.get("GRITDESK_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "gritdesk"


def data_dir() -> Path:
    """The default index database and config live here (user data dir of the platform)."""
    explicit = os.environ.get("GRITDESK_DATA_DIR")
    if explicit:
        return Path(explicit)
    return Path(platformdirs.user_data_dir("gritdesk", appauthor=False))


def default_db_path() -> Path:
    return data_dir() / "index.db"


def sdist_path() -> Path:
    """The pinned llama-cpp-python sdist build.sh downloaded (holds the real vocab files)."""
    recipe = (REPO_ROOT / "native" / "recipe.env").read_text()
    version = next(
        line.split("=", 1)[1].strip()
        for line in recipe.splitlines()
        if line.startswith("LLAMA_CPP_PYTHON_VERSION=")
    )
    return cache_dir() / "sdist" / f"llama_cpp_python-{version}.tar.gz"
