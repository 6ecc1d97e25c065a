"""Where gritdesk keeps things on disk; one place so build.sh and the app agree.

The cache directory rule is the one build.sh uses:
``$GRITDESK_CACHE_DIR`` or ``$XDG_CACHE_HOME/gritdesk`` or ``~/.cache/gritdesk``.
Nothing here looks at the source checkout: the data gritdesk reads at run time ships
inside the package (see `pyproject.toml` package data), so an installed wheel works too.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import platformdirs


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


NATIVE_DIST = "llama-cpp-python"  # the distribution build.sh builds from its pinned sdist


def sdist_path() -> Path:
    """The llama-cpp-python sdist build.sh downloaded (holds the real vocab files).

    build.sh builds the installed llama-cpp-python from exactly this sdist (the version in
    native/recipe.env), so the installed distribution's version names it; reading its
    metadata imports nothing of llama.cpp.
    """
    version = metadata.version(NATIVE_DIST)
    stem = NATIVE_DIST.replace("-", "_")  # sdist file names are normalised so (PEP 625)
    return cache_dir() / "sdist" / f"{stem}-{version}.tar.gz"
