"""Errors of `gritdesk models ...`; each names the model, file or URL at fault."""

from __future__ import annotations

from pathlib import Path

from gritdesk.errors import GritdeskError


class ModelsError(GritdeskError):
    """Base class: a model could not be found, fetched, checked or registered."""


class UnknownModelError(ModelsError):
    """A name that is neither a file, an installed model nor a known build."""


class CatalogError(ModelsError):
    """models/registry.toml is missing or malformed (a bug in the repo, named precisely)."""


class InstalledRegistryError(ModelsError):
    """The user's models.json cannot be read or written."""


class HubUnavailableError(ModelsError):
    """No network, offline mode, or the hub refused: says what to download and where to put it."""


class ChecksumMismatchError(ModelsError):
    def __init__(self, path: Path, expected: str, actual: str, removed: bool) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        self.removed = removed
        what = "the file was removed" if removed else "the file was kept (not ours to delete)"
        super().__init__(
            f"{path}: sha256 mismatch: expected {expected}, got {actual}; {what}. "
            "The download is corrupt or the file on the hub changed; try again, and if it "
            "persists the registry entry is out of date."
        )
