"""Which model and database a command uses when the user names none.

Order: the command's flag, then the environment (GRITDESK_MODEL, GRITDESK_DB), then
`config.toml` in the data directory. A missing model is an error that says how to get one.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from gritdesk.errors import GritdeskError
from gritdesk.ingest.file_selection import DATA_KINDS, FileSelection
from gritdesk.ingest.parser_process import MIB, ParseLimits
from gritdesk.paths import data_dir, default_db_path

GET_A_MODEL = (
    "no model given. Pass --model PATH.gguf (or an installed model's name), set "
    'GRITDESK_MODEL, or set `model = "..."` in {config}. '
    "To get GritLM-7B: `gritdesk models pull gritlm-7b` (needs internet once); "
    "to try gritdesk offline: `gritdesk models synth tiny` (a synthetic model, answers are noise)."
)


class ConfigError(GritdeskError):
    pass


def config_path() -> Path:
    return data_dir() / "config.toml"


def load_config() -> dict[str, object]:
    path = config_path()
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def _model_ref(value: str | os.PathLike[str]) -> Path:
    """A path as given, or an installed model's name (`gritlm-7b`, `gritlm-7b:Q8_0`)."""
    text = str(value)
    path = Path(text).expanduser()
    if path.exists() or "/" in text or text.endswith(".gguf"):
        return path
    from gritdesk.models.catalog import load_catalog
    from gritdesk.models.installed import InstalledModels
    from gritdesk.models.library import locate_model

    return locate_model(text, InstalledModels(), load_catalog()).path


def resolve_model(flag: str | os.PathLike[str] | None) -> Path | None:
    """The model to use: the flag, GRITDESK_MODEL, `model` in config.toml, else the model
    `gritdesk models pull/add` installed (if it is the only one, or the default GritLM)."""
    for value in (flag, os.environ.get("GRITDESK_MODEL"), load_config().get("model")):
        if value:
            return _model_ref(value)  # type: ignore[arg-type]
    from gritdesk.models.catalog import load_catalog
    from gritdesk.models.installed import InstalledModels
    from gritdesk.models.library import default_model

    installed = default_model(InstalledModels(), load_catalog())
    return Path(installed.path) if installed is not None else None


def require_model(flag: str | os.PathLike[str] | None) -> Path:
    path = resolve_model(flag)
    if path is None:
        raise ConfigError(GET_A_MODEL.format(config=config_path()))
    return path


def resolve_db(flag: str | os.PathLike[str] | None) -> Path:
    if flag:
        return Path(flag).expanduser()
    env = os.environ.get("GRITDESK_DB")
    if env:
        return Path(env).expanduser()
    value = load_config().get("db")
    return Path(str(value)).expanduser() if value else default_db_path()


# config.toml key in [index] -> (ParseLimits field, bytes per unit)
INDEX_LIMIT_KEYS = {
    "max_file_mib": ("file_bytes", MIB),
    "parse_timeout_s": ("seconds", 1),
    "parse_memory_mib": ("memory_bytes", MIB),
    "parse_output_mib": ("output_bytes", MIB),
}


# config.toml keys in [index] read by load_index_settings (the kinds: DATA_KINDS)
INDEX_SELECTION_KEYS = (
    *(f"{kind}_max_mib" for kind in DATA_KINDS),
    "include",
    "exclude",
    "skip_vendored",
    "confirm_above_min",
)


@dataclass(frozen=True)
class IndexSettings:
    """How `gritdesk index` chooses files, and when it asks before a long run."""

    selection: FileSelection
    confirm_above_s: float = 600.0  # a terminal run estimated longer asks first


def _index_table() -> dict[str, object]:
    table = load_config().get("index", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{config_path()}: [index] must be a table")
    for key in table:
        if key not in INDEX_LIMIT_KEYS and key not in INDEX_SELECTION_KEYS and key != "ocr":
            known = ", ".join((*INDEX_LIMIT_KEYS, "ocr", *INDEX_SELECTION_KEYS))
            raise ConfigError(f"{config_path()}: unknown key index.{key} (known: {known})")
    return table


def load_index_limits() -> ParseLimits:
    """Per-file limits of `gritdesk index`: the defaults, changed by config.toml's [index]."""
    table = _index_table()
    limits = ParseLimits()
    for key, value in table.items():
        if key == "ocr":
            if not isinstance(value, bool):
                raise ConfigError(f"{config_path()}: index.ocr must be true or false")
            limits = replace(limits, ocr=value)
            continue
        if key not in INDEX_LIMIT_KEYS:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{config_path()}: index.{key} must be a positive number")
        field, unit = INDEX_LIMIT_KEYS[key]
        limits = replace(limits, **{field: value if unit == 1 else int(value * unit)})
    return limits


def load_index_settings() -> IndexSettings:
    """What `gritdesk index` skips as bulk data or vendored folders, and when it asks
    first: the defaults, changed by config.toml's [index] (`csv_max_mib = 5`,
    `include = ["*.csv"]`, `confirm_above_min = 30`, ...)."""
    table = _index_table()
    selection = FileSelection()
    confirm_above_s = IndexSettings(selection).confirm_above_s
    limits = dict(selection.kind_limits)
    patterns: dict[str, tuple[str, ...]] = {"include": (), "exclude": ()}
    for key, value in table.items():
        if key.endswith("_max_mib") and key.removesuffix("_max_mib") in DATA_KINDS:
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{config_path()}: index.{key} must be a number >= 0")
            limits[key.removesuffix("_max_mib")] = int(value * MIB)
        elif key in patterns:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(
                    f"{config_path()}: index.{key} must be a list of glob patterns (strings)"
                )
            patterns[key] = tuple(value)
        elif key == "skip_vendored":
            if not isinstance(value, bool):
                raise ConfigError(f"{config_path()}: index.skip_vendored must be true or false")
            selection = replace(selection, skip_vendored=value)
        elif key == "confirm_above_min":
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{config_path()}: index.confirm_above_min must be a number >= 0")
            confirm_above_s = float(value) * 60
    selection = replace(
        selection, kind_limits=limits, include=patterns["include"], exclude=patterns["exclude"]
    )
    return IndexSettings(selection, confirm_above_s)
