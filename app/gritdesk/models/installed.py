"""The user's models: what `pull` fetched and `add` registered, in `<data dir>/models.json`.

A small JSON file, not SQLite: it holds a dozen entries, is read whole by every
command, is worth being able to read and fix by hand, and must not depend on the
index database (a model can be registered before any index exists). Writes go to a
temporary file that replaces the old one, so a crash never leaves half a file.

Each entry lists the files gritdesk created for it (`files_owned`): `rm` deletes
exactly those, so a file the user `add`ed is never deleted.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from gritdesk.models.catalog import CatalogFile
from gritdesk.models.errors import InstalledRegistryError, UnknownModelError
from gritdesk.paths import data_dir
from gritdesk.runtime.gguf_check import fingerprint

SCHEMA = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]*$")

Origin = Literal["pulled", "added"]


@dataclass
class InstalledModel:
    name: str
    path: str
    origin: Origin
    recipe: str
    size: int
    fingerprint: str
    sha256: str = ""  # verified digest; "" when it was not hashed
    repo: str = ""
    filename: str = ""
    revision: str = ""
    files_owned: list[str] = field(default_factory=list)
    added_at: str = ""
    # `path` converted at install to a faster layout (models/fast_weights.py): the file as
    # it came, and why the conversion was (or was not) kept
    original_path: str = ""
    weights_note: str = ""

    @property
    def owned(self) -> bool:
        return bool(self.files_owned)

    def exists(self) -> bool:
        return Path(self.path).is_file()

    @classmethod
    def pulled(
        cls,
        file: CatalogFile,
        path: Path,
        *,
        size: int,
        gguf: Path,
        sha256: str,
        repo: str,
        files_owned: list[str],
        revision: str = "",
    ) -> InstalledModel:
        """A catalog file now on disk at `path` (`gguf`: the bytes to fingerprint)."""
        return cls(
            name=file.name,
            path=str(path),
            origin="pulled",
            recipe=file.recipe,
            size=size,
            fingerprint=fingerprint(gguf),
            sha256=sha256,
            repo=repo,
            filename=file.filename,
            revision=revision,
            files_owned=files_owned,
        )


def registry_path() -> Path:
    return data_dir() / "models.json"


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InstalledRegistryError(
            f"model name {name!r}: use letters, digits and . _ : + - (no spaces or slashes); "
            "choose one with --name"
        )
    return name


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class InstalledModels:
    """Load, change and save the user's model list (one JSON file)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or registry_path()
        self._models: dict[str, InstalledModel] = self._load()

    def _load(self) -> dict[str, InstalledModel]:
        if not self.path.exists():
            return {}
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            entries = raw["models"]
            fields = InstalledModel.__dataclass_fields__
            return {
                name: InstalledModel(**{k: v for k, v in entry.items() if k in fields})
                for name, entry in entries.items()
            }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InstalledRegistryError(
                f"{self.path}: cannot read the model list ({exc}); fix or delete the file"
            ) from None

    def save(self) -> None:
        models = {name: asdict(model) for name, model in sorted(self._models.items())}
        payload = {"schema": SCHEMA, "models": models}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            raise InstalledRegistryError(
                f"{self.path}: cannot write the model list ({exc})"
            ) from None

    def all(self) -> list[InstalledModel]:
        return [self._models[name] for name in sorted(self._models)]

    def names(self) -> list[str]:
        return sorted(self._models)

    def get(self, name: str) -> InstalledModel | None:
        return self._models.get(name)

    def by_path(self, path: Path) -> InstalledModel | None:
        target = path.resolve()
        return next((m for m in self._models.values() if Path(m.path).resolve() == target), None)

    def put(self, model: InstalledModel) -> None:
        check_name(model.name)
        model.added_at = model.added_at or now_iso()
        self._models[model.name] = model
        self.save()

    def pop(self, name: str) -> InstalledModel:
        model = self._models.pop(name, None)
        if model is None:
            raise UnknownModelError(f"{name!r} is not installed; installed: {self.describe()}")
        self.save()
        return model

    def describe(self) -> str:
        return ", ".join(self.names()) or "none"
