"""`pull` against a real HTTP server on loopback standing in for the hub (via HF_ENDPOINT)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gritdesk.models.catalog import Catalog, load_catalog
from gritdesk.models.errors import ChecksumMismatchError, HubUnavailableError
from gritdesk.models.installed import InstalledModels
from gritdesk.models.library import remove_model
from gritdesk.models.pull import pull_model
from gritdesk.runtime.gguf_check import check_gguf

from .conftest import FakeHub

GRITDESK = [sys.executable, "-c", "from gritdesk.cli import main; main()"]
REPO = "test-org/tiny-GGUF"
FILE = "tiny.Q0.gguf"
REVISION = "89abcdef0123456789abcdef0123456789abcdef"


def _catalog(tmp_path: Path, sha256: str, size: int = 0) -> Catalog:
    registry = tmp_path / "registry.toml"
    registry.write_text(
        f"""
schema = 1
[models.tiny]
recipe = "gritlm"
default_quant = "F32"

[[models.tiny.files]]
quant = "F32"
repo = "{REPO}"
filename = "{FILE}"
revision = "{REVISION}"
size = {size}
size_shown = "17 MB"
sha256 = "{sha256}"
source = "test"
"""
    )
    return load_catalog(registry)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """A fresh process, so huggingface_hub reads HF_* at import as it would for a user."""
    return subprocess.run(
        [*GRITDESK, *args], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )


@pytest.fixture
def tiny_bytes(tiny_model_path: Path) -> bytes:
    return tiny_model_path.read_bytes()


def test_good_download_is_verified_validated_and_registered(
    fake_hub: FakeHub, hub_env: Path, data_home: Path, tmp_path: Path, tiny_bytes: bytes
) -> None:
    fake_hub.serve(REPO, FILE, tiny_bytes)
    catalog = _catalog(tmp_path, hashlib.sha256(tiny_bytes).hexdigest())
    store = InstalledModels()

    result = pull_model("tiny", store, catalog)

    assert result.downloaded and result.verified and not result.already_installed
    path = Path(result.model.path)
    assert path.read_bytes() == tiny_bytes
    assert hub_env in path.parents, "the download must land in HF_HOME's hub cache"
    assert REVISION in path.parts, "the pinned revision is what gets fetched"
    assert check_gguf(path).n_layer == 2
    assert [g.path for g in fake_hub.gets()] == [f"/{REPO}/resolve/{REVISION}/{FILE}"]
    # registered, persisted, and owned (rm may delete what pull downloaded)
    again = InstalledModels().get("tiny:F32")
    assert again is not None and again.path == str(path) and again.owned
    assert again.sha256 == hashlib.sha256(tiny_bytes).hexdigest()
    # a second pull is a no-op: nothing is fetched again
    assert pull_model("tiny", InstalledModels(), catalog).already_installed
    assert len(fake_hub.gets()) == 1


def test_interrupted_download_resumes_with_a_range_request(
    fake_hub: FakeHub, hub_env: Path, data_home: Path, tmp_path: Path, tiny_bytes: bytes
) -> None:
    # past huggingface_hub's 10 MiB chunk, so the first chunk is on disk when the cut comes
    cut = 12 << 20
    assert len(tiny_bytes) > cut
    fake_hub.drop_first_get_after = cut
    fake_hub.serve(REPO, FILE, tiny_bytes)
    catalog = _catalog(tmp_path, hashlib.sha256(tiny_bytes).hexdigest())

    result = pull_model("tiny", InstalledModels(), catalog)

    gets = fake_hub.gets()
    assert len(gets) == 2, [g.headers for g in gets]
    assert "Range" not in gets[0].headers
    start = int(gets[1].headers["Range"].removeprefix("bytes=").removesuffix("-"))
    assert 0 < start <= cut, gets[1].headers["Range"]
    assert Path(result.model.path).read_bytes() == tiny_bytes
    assert result.verified


def test_checksum_mismatch_removes_the_file_and_says_so(
    fake_hub: FakeHub, hub_env: Path, data_home: Path, tmp_path: Path, tiny_bytes: bytes
) -> None:
    fake_hub.serve(REPO, FILE, tiny_bytes)
    wrong = hashlib.sha256(b"not the file").hexdigest()
    catalog = _catalog(tmp_path, wrong)

    with pytest.raises(ChecksumMismatchError) as caught:
        pull_model("tiny", InstalledModels(), catalog)

    message = str(caught.value)
    assert "sha256 mismatch" in message and "removed" in message
    assert wrong in message and hashlib.sha256(tiny_bytes).hexdigest() in message
    assert not caught.value.path.exists()
    left = [p for p in hub_env.rglob("*") if p.is_file() and p.stat().st_size > 1 << 20]
    assert left == [], f"the corrupt download is still in the cache: {left}"
    assert InstalledModels().get("tiny:F32") is None


def test_offline_mode_says_what_to_download_and_where(
    hub_env: Path, data_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sha = "ab" * 32
    catalog = _catalog(tmp_path, sha)

    with pytest.raises(HubUnavailableError) as caught:
        pull_model("tiny", InstalledModels(), catalog)

    message = str(caught.value)
    assert "offline mode" in message
    assert f"/{REPO}/resolve/{REVISION}/{FILE}" in message  # the URL to fetch by hand
    assert sha in message
    assert f"gritdesk models add {data_home / 'models' / FILE}" in message


def test_unreachable_endpoint_fails_fast_with_the_same_advice(
    data_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    catalog = _catalog(tmp_path, "")

    with pytest.raises(HubUnavailableError) as caught:
        pull_model("tiny", InstalledModels(), catalog)

    message = str(caught.value)
    assert f"cannot reach http://127.0.0.1:{port}" in message
    assert f"http://127.0.0.1:{port}/{REPO}/resolve/{REVISION}/{FILE}" in message
    assert "sha256 not published" in message


def test_missing_file_on_the_hub_is_a_clear_error(
    fake_hub: FakeHub, hub_env: Path, data_home: Path, tmp_path: Path
) -> None:
    catalog = _catalog(tmp_path, "")
    with pytest.raises(HubUnavailableError, match=rf"HTTP 404 for {REPO}/{FILE}"):
        pull_model("tiny", InstalledModels(), catalog)


def test_rm_deletes_what_pull_downloaded(
    fake_hub: FakeHub, hub_env: Path, data_home: Path, tmp_path: Path, tiny_bytes: bytes
) -> None:
    fake_hub.serve(REPO, FILE, tiny_bytes)
    catalog = _catalog(tmp_path, hashlib.sha256(tiny_bytes).hexdigest())
    pulled = pull_model("tiny", InstalledModels(), catalog).model
    blob = Path(pulled.path).resolve()

    removed = remove_model("tiny", InstalledModels(), catalog)  # the family alias works

    assert removed.kept is None
    assert not Path(pulled.path).exists() and not blob.exists()
    assert InstalledModels().get(pulled.name) is None


def test_cli_pull_checks_the_real_registry_sha256(
    fake_hub: FakeHub, hub_env: Path, data_home: Path, tiny_bytes: bytes
) -> None:
    """End to end through `gritdesk models pull gritlm-7b`: huggingface_hub reads HF_ENDPOINT
    and HF_HOME at import in a fresh process; the hub here serves the wrong bytes."""
    known = load_catalog().get("gritlm-7b")
    fake_hub.serve(known.repo, known.filename, tiny_bytes)
    proc = run_cli("models", "pull", "gritlm-7b")
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    assert "sha256 mismatch" in proc.stderr and "the file was removed" in proc.stderr
    assert known.sha256 in proc.stderr
    assert fake_hub.gets()[0].path == f"/{known.repo}/resolve/{known.revision}/{known.filename}"


def test_cli_offline_message_names_the_default_model_url(
    data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    proc = run_cli("models", "pull", "gritlm-7b")
    known = load_catalog().get("gritlm-7b")
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    assert known.url("https://huggingface.co") in proc.stderr
    assert "gritdesk models add" in proc.stderr
