"""Models other tools keep: fake Ollama, LM Studio and Hugging Face stores laid out exactly as
each tool writes them (Ollama's manifests and content-addressed blobs, LM Studio's
publisher/repo folders, the hub cache's snapshot links into blobs), each holding a real
GGUF; every one is listed and runs by its name."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest

from gritdesk.models.found import FoundModelError, Stores, found_models, locate_found

BLOB_DIGEST_ALGO = "sha256"


def ollama_store(root: Path, model: Path, name: str, tag: str, namespace: str = "library") -> Path:
    """`ollama pull` leaves a manifest per tag and the layers as blobs named by digest."""
    data = model.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    blobs = root / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    blob = blobs / f"sha256-{digest}"
    blob.write_bytes(data)
    template = b"{{ .Prompt }}"
    (blobs / f"sha256-{hashlib.sha256(template).hexdigest()}").write_bytes(template)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": "sha256:" + "0" * 64,
            "size": 2,
        },
        "layers": [
            {
                "mediaType": "application/vnd.ollama.image.model",
                "digest": f"sha256:{digest}",
                "size": len(data),
            },
            {
                "mediaType": "application/vnd.ollama.image.template",
                "digest": f"sha256:{hashlib.sha256(template).hexdigest()}",
                "size": len(template),
            },
        ],
    }
    folder = root / "manifests" / "registry.ollama.ai" / namespace / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / tag).write_text(json.dumps(manifest))
    return blob


def hf_cache(hub: Path, repo: str, model: Path, filename: str, revision: str) -> Path:
    """The hub cache: `snapshots/<rev>/<file>` is a relative link to `blobs/<etag>`."""
    folder = hub / f"models--{repo.replace('/', '--')}"
    data = model.read_bytes()
    blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    snapshot = folder / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    (snapshot / filename).symlink_to(os.path.relpath(blob, snapshot))
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(revision)
    return snapshot / filename


def mamba_shaped_gguf(path: Path) -> Path:
    """A sound GGUF of an architecture gritdesk does not run."""
    writer = gguf.GGUFWriter(str(path), "mamba")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def home(tmp_path: Path, tiny_model_path: Path) -> Path:
    home = tmp_path / "home"
    ollama_store(home / ".ollama/models", tiny_model_path, "tiny", "latest")
    ollama_store(home / ".ollama/models", tiny_model_path, "tiny", "q8", namespace="someone")
    studio = home / ".lmstudio/models/gritdesk-tests/tiny-GGUF"
    studio.mkdir(parents=True)
    (studio / "tiny.f32.gguf").write_bytes(tiny_model_path.read_bytes())
    hub = home / ".cache/huggingface/hub"
    hf_cache(hub, "gritdesk/tiny-GGUF", tiny_model_path, "tiny-f32.gguf", "a" * 40)
    mamba = mamba_shaped_gguf(tmp_path / "mamba.gguf")
    hf_cache(hub, "state-spaces/mamba-130m-GGUF", mamba, "mamba-130m-Q8_0.gguf", "b" * 40)
    return home


def test_each_store_is_read_as_its_tool_writes_it(home: Path) -> None:
    stores = Stores.from_env({}, home)
    names = {m.name: m for m in found_models(stores)}
    assert set(names) == {
        "ollama:tiny:latest",
        "ollama:someone/tiny:q8",
        "lmstudio:gritdesk-tests/tiny-GGUF",
        "hf:gritdesk/tiny-GGUF",
        "hf:state-spaces/mamba-130m-GGUF",
    }
    assert names["ollama:tiny:latest"].path.name.startswith("sha256-")
    assert locate_found("ollama:tiny", stores).name == "ollama:tiny:latest"
    with pytest.raises(FoundModelError, match="ollama:tiny:latest"):
        locate_found("ollama:qwen2.5:3b", stores)


def test_environment_moves_the_stores(home: Path, tmp_path: Path, tiny_model_path: Path) -> None:
    moved = tmp_path / "elsewhere"
    ollama_store(moved, tiny_model_path, "moved", "7b")
    env = {"OLLAMA_MODELS": str(moved), "HF_HOME": str(tmp_path / "nohf")}
    names = {m.name for m in found_models(Stores.from_env(env, home))}
    assert "ollama:moved:7b" in names and "ollama:tiny:latest" not in names
    assert not any(n.startswith("hf:") for n in names)


def test_broken_manifests_are_passed_over(home: Path) -> None:
    manifests = home / ".ollama/models/manifests/registry.ollama.ai/library"
    (manifests / "broken").mkdir()
    (manifests / "broken" / "latest").write_text("{not json")
    (manifests / "gone").mkdir()
    (manifests / "gone" / "latest").write_text(
        json.dumps(
            {
                "layers": [
                    {
                        "mediaType": "application/vnd.ollama.image.model",
                        "digest": "sha256:" + "f" * 64,
                    }
                ]
            }
        )
    )
    names = {m.name for m in found_models(Stores.from_env({}, home))}
    assert "ollama:tiny:latest" in names
    assert not {"ollama:broken:latest", "ollama:gone:latest"} & names


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("OLLAMA_MODELS", "HF_HOME", "HF_HUB_CACHE")
    }
    env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-c", "from gritdesk.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_models_list_and_every_found_model_runs_by_name(home: Path, tiny_model_path: Path) -> None:
    proc = cli(home, "models", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    found = {row["name"]: row for row in json.loads(proc.stdout)["found"]}
    assert found["hf:state-spaces/mamba-130m-GGUF"]["architecture"] == "mamba"
    assert found["hf:state-spaces/mamba-130m-GGUF"]["runnable"] is False
    assert "not supported" in found["hf:state-spaces/mamba-130m-GGUF"]["why_not"]
    runnable = [name for name, row in found.items() if row["runnable"]]
    assert len(runnable) == 4 and all(found[n]["architecture"] == "llama" for n in runnable)

    proc = cli(home, "embed", "--model", str(tiny_model_path), "harbour grain")
    assert proc.returncode == 0, proc.stderr
    expected = json.loads(proc.stdout)["embeddings"]
    for name in runnable:
        proc = cli(home, "embed", "--model", name, "harbour grain")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["embeddings"] == expected, name

    proc = cli(home, "embed", "--model", "ollama:nothere:1b", "x")
    assert proc.returncode == 2 and "no model 'ollama:nothere:1b' found" in proc.stderr
    assert "Traceback" not in proc.stderr
