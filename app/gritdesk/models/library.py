"""Add, remove and find models: the user's installed list joined with the known builds.

`add` validates a local GGUF before it is registered; a file the catalog knows (by the
name given, or by its file name) is checked against the published sha256 first, so the
manual-download route that `pull` suggests offline ends in a verified file too.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from gritdesk.models.catalog import Catalog, CatalogFile
from gritdesk.models.checksum import sha256_file
from gritdesk.models.errors import ChecksumMismatchError, InstalledRegistryError, UnknownModelError
from gritdesk.models.fast_weights import prefer_fast_weights
from gritdesk.models.installed import InstalledModel, InstalledModels, check_name
from gritdesk.models.progress import Progress, SilentProgress
from gritdesk.runtime.chat_template import file_recipe_name
from gritdesk.runtime.gguf_check import check_gguf, fingerprint


@dataclass(frozen=True)
class AddResult:
    model: InstalledModel
    catalog_file: CatalogFile | None
    verified: bool  # sha256 matched a published digest
    already: bool  # the same file was registered under this name before


def _catalog_match(catalog: Catalog, path: Path, name: str | None) -> CatalogFile | None:
    if name is not None:
        if name.partition(":")[0].lower() in catalog.models:
            return catalog.get(name)  # a known family with an unknown quant is an error
        return None
    return catalog.by_filename(path.name)


def add_model(
    path: Path,
    store: InstalledModels,
    catalog: Catalog,
    *,
    name: str | None = None,
    recipe: str | None = None,
    progress: Progress | None = None,
) -> AddResult:
    """Validate `path` with check_gguf, verify it when the catalog knows it, register it.

    The file stays where it is and is never deleted by `rm`.
    """
    path = Path(os.path.abspath(path.expanduser()))  # keep the user's name (no symlink resolve)
    known = _catalog_match(catalog, path, name)
    final_name = check_name(known.name if known else (name or path.stem))
    existing = store.get(final_name)
    if existing is not None and path.exists():
        if Path(existing.path).resolve() == path.resolve():
            return AddResult(existing, known, bool(existing.sha256), already=True)
        raise InstalledRegistryError(
            f"{final_name!r} is already registered for {existing.path}; "
            f"`gritdesk models rm {final_name}` first, or pass --name"
        )
    summary = check_gguf(path)  # ModelFileError names the file and what is wrong

    digest = ""
    if known is not None and known.sha256:
        with (progress or SilentProgress()).task(f"sha256 {path.name}", summary.file_size) as bar:
            digest = sha256_file(path, bar.advance)
        if digest != known.sha256:
            raise ChecksumMismatchError(path, known.sha256, digest, removed=False)

    model = InstalledModel(
        name=final_name,
        path=str(path),
        origin="added",
        recipe=recipe or (known.recipe if known else file_recipe_name(summary)),
        size=summary.file_size,
        fingerprint=fingerprint(path),
        sha256=digest,
        repo=known.repo if known else "",
        filename=path.name,
        revision=known.revision if known else "",
    )
    store.put(prefer_fast_weights(model))
    return AddResult(model, known, verified=bool(digest), already=False)


@dataclass(frozen=True)
class RemoveResult:
    model: InstalledModel
    deleted: list[Path]
    kept: Path | None  # the user's own file, left in place


def find_installed(ref: str, store: InstalledModels, catalog: Catalog) -> InstalledModel | None:
    """An installed model by its name, its catalog alias (`gritlm-7b`), or its file path."""
    model = store.get(ref)
    if model is not None:
        return model
    known = catalog.lookup(ref)
    if known is not None and store.get(known.name) is not None:
        return store.get(known.name)
    candidate = Path(ref).expanduser()
    if candidate.exists():
        return store.by_path(candidate)
    return None


def remove_model(ref: str, store: InstalledModels, catalog: Catalog) -> RemoveResult:
    """Unregister a model; delete only the files gritdesk itself downloaded for it."""
    model = find_installed(ref, store, catalog)
    if model is None:
        raise UnknownModelError(f"{ref!r} is not installed; installed: {store.describe()}")
    deleted: list[Path] = []
    for owned in model.files_owned:
        file = Path(owned)
        if file.is_dir() and not file.is_symlink():  # a converted model's source files
            shutil.rmtree(file)
            deleted.append(file)
        elif file.is_symlink() or file.exists():
            file.unlink()
            deleted.append(file)
    store.pop(model.name)
    original = Path(model.original_path or model.path)  # a converted copy's source too
    kept = None if str(original) in model.files_owned else original
    return RemoveResult(model, deleted, kept=kept)


@dataclass(frozen=True)
class LocatedModel:
    path: Path
    installed: InstalledModel | None
    catalog_file: CatalogFile | None


def locate_model(ref: str, store: InstalledModels, catalog: Catalog) -> LocatedModel:
    """Resolve NAME|PATH to a model file; errors say whether to `pull` or what exists.

    For wiring `--model NAME` into config: `locate_model(value, ...).path`.
    """
    candidate = Path(ref).expanduser()
    if candidate.exists():
        installed = store.by_path(candidate)
        known = catalog.lookup(installed.name) if installed else catalog.by_filename(candidate.name)
        return LocatedModel(candidate, installed, known)
    installed = find_installed(ref, store, catalog)
    if installed is not None:
        if not installed.exists():
            raise UnknownModelError(
                f"{installed.name}: its file {installed.path} is gone; "
                f"`gritdesk models rm {installed.name}` and pull or add it again"
            )
        return LocatedModel(Path(installed.path), installed, catalog.lookup(installed.name))
    known = catalog.lookup(ref)
    if known is not None:
        raise UnknownModelError(
            f"{known.name} is a known model but not downloaded: `gritdesk models pull {known.name}`"
        )
    looks_like_path = "/" in ref or ref.endswith(".gguf")
    what = "no such file" if looks_like_path else "not an installed or known model"
    raise UnknownModelError(
        f"{ref!r}: {what}; installed: {store.describe()}; known: {', '.join(catalog.models)}"
    )


def default_model(
    store: InstalledModels, catalog: Catalog, *, generating: bool = True
) -> InstalledModel | None:
    """The model to use when the user named none, or None when there is no clear choice.

    The only installed model; else the first known family's default build that is
    installed (registry order: gritlm-7b first). For config's fallback after `pull`.
    `generating` leaves out embedding-only models (MiniLM), which cannot answer.
    """
    from gritdesk.runtime.recipes import RECIPES

    def answers(model: InstalledModel) -> bool:
        recipe = RECIPES.get(model.recipe or "")
        return not generating or recipe is None or recipe.generates

    present = [m for m in store.all() if m.exists() and answers(m)]
    if len(present) == 1:
        return present[0]
    names = {m.name: m for m in present}
    for model in catalog.models.values():
        default = catalog.lookup(model.family)
        if default is not None and default.name in names:
            return names[default.name]
    return None
