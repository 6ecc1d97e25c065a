"""`models add | info | list | rm` round trip through the CLI, and clear errors for bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gritdesk.commands.models import models_app
from gritdesk.errors import GritdeskError
from gritdesk.models.catalog import load_catalog
from gritdesk.models.errors import ChecksumMismatchError
from gritdesk.models.installed import InstalledModel, InstalledModels
from gritdesk.models.library import default_model
from gritdesk.models.model_info import kv_bytes_per_token
from gritdesk.models.synthetic import load_shapes, tensor_specs
from gritdesk.runtime.gguf_check import fingerprint

runner = CliRunner()


def cli(*args: str):
    return runner.invoke(models_app, list(args))


def ok(*args: str) -> str:
    result = cli(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def fails(*args: str) -> str:
    """The GritdeskError message `gritdesk` would print (cli.main prints exactly this)."""
    result = cli(*args)
    assert isinstance(result.exception, GritdeskError), (result.output, result.exception)
    return str(result.exception)


def test_add_info_list_rm_round_trip(data_home: Path, tiny_model_path: Path) -> None:
    out = ok("add", str(tiny_model_path), "--name", "tiny-test")
    assert out.split("\t") == ["tiny-test", f"{tiny_model_path}\n"]

    listed = json.loads(ok("list", "--json"))
    (mine,) = listed["installed"]
    assert mine["name"] == "tiny-test" and mine["origin"] == "added" and not mine["owned"]
    assert {k["name"] for k in listed["known"]} >= {"gritlm-7b:Q4_K_M", "gritlm-8x7b:Q4_K_M"}

    info = json.loads(ok("info", "tiny-test", "--json"))
    shape = load_shapes()["tiny"]
    expected_params = sum(int(np.prod(dims)) for _n, dims, _k in tensor_specs(shape, 32000))
    assert info["parameters"] == expected_params
    assert info["architecture"] == "llama"
    assert info["quantization"] == "F32"
    assert info["context_length"] == shape.n_ctx_train
    assert info["vocab_size"] == 32000
    assert (info["n_layer"], info["n_head_kv"], info["head_dim"]) == (2, 1, 32)
    # 2 layers x (K and V) x one 32-value row: f16 64 B, q8_0 one 34-byte block, q4_0 18 B
    assert info["kv_bytes_per_token"] == {"f16": 256, "q8_0": 136, "q4_0": 72}
    assert info["recipe"] == "gritlm" and "tiny-test" in info["recipe_source"]
    assert info["fingerprint"] == fingerprint(tiny_model_path)

    table = ok("info", str(tiny_model_path))  # by path, as a table for people
    assert "tiny-test" in table and "KV per token, q8_0" in table and "4.17M" in table

    assert ok("rm", "tiny-test").strip() == "removed tiny-test"
    assert tiny_model_path.exists(), "rm must never delete a file the user added"
    assert json.loads(ok("list", "--json"))["installed"] == []


def test_adding_the_same_file_twice_is_harmless_but_a_name_clash_is_not(
    data_home: Path, tiny_model_path: Path, tiny_b_model_path: Path
) -> None:
    ok("add", str(tiny_model_path), "--name", "mine")
    ok("add", str(tiny_model_path), "--name", "mine")
    message = fails("add", str(tiny_b_model_path), "--name", "mine")
    assert "'mine' is already registered" in message and str(tiny_model_path) in message


def test_bad_paths_are_named(data_home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    message = fails("add", str(missing))
    assert str(missing) in message and "file not found" in message

    junk = tmp_path / "junk.gguf"
    junk.write_bytes(os.urandom(1024))
    message = fails("add", str(junk))
    assert str(junk) in message and "not a GGUF file" in message

    message = fails("info", str(missing))
    assert str(missing) in message and "no such file" in message


def test_bad_names_are_named(data_home: Path, tiny_model_path: Path) -> None:
    assert "'bad name'" in fails("add", str(tiny_model_path), "--name", "bad name")
    message = fails("add", str(tiny_model_path), "--name", "gritlm-7b:Q9")
    assert "gritlm-7b:Q9" in message and "Q4_K_M" in message
    message = fails("rm", "ghost")
    assert "'ghost' is not installed" in message
    message = fails("info", "ghost")
    assert "'ghost'" in message and "gritlm-7b" in message
    message = fails("info", "gritlm-7b")
    assert "gritdesk models pull gritlm-7b:Q4_K_M" in message
    assert "no such quantization" in fails("pull", "gritlm-7b:Q9")


def test_add_recognises_a_known_file_and_checks_its_sha256(
    data_home: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    """The offline route: a file saved under a known build's name is verified on `add`."""
    known = load_catalog().get("gritlm-7b")
    fake = tmp_path / known.filename
    shutil.copyfile(tiny_model_path, fake)

    result = cli("add", str(fake))

    assert isinstance(result.exception, ChecksumMismatchError)
    assert known.sha256 in str(result.exception) and "kept" in str(result.exception)
    assert fake.exists(), "add never deletes the user's file"
    assert json.loads(ok("list", "--json"))["installed"] == []


def test_kv_bytes_for_the_mistral_7b_shape() -> None:
    """GRITLM_NOTES: f16 128 KiB, q8_0 68 KiB, q4_0 36 KiB per token (32 layers, 8 x 128)."""
    assert kv_bytes_per_token(32, 8, 128) == {"f16": 128 << 10, "q8_0": 68 << 10, "q4_0": 36 << 10}


@pytest.mark.parametrize(
    "name", ["gritlm-7b", "gritlm-7b:q8_0", "GRITLM-7B-KTO", "gritlm-8x7b:Q5_K_M"]
)
def test_registry_names_resolve(name: str) -> None:
    found = load_catalog().get(name)
    assert found.name.lower().startswith(name.split(":")[0].lower())
    assert found.recipe == "gritlm"


def test_default_model_is_the_only_one_or_the_default_build(
    data_home: Path, tiny_model_path: Path, tiny_b_model_path: Path
) -> None:
    catalog = load_catalog()
    store = InstalledModels()
    assert default_model(store, catalog) is None

    def put(name: str, path: Path) -> None:
        store.put(InstalledModel(name, str(path), "added", "gritlm", 1, "fp"))

    put("mine", tiny_model_path)
    assert default_model(store, catalog).name == "mine"
    put("other", tiny_b_model_path)
    assert default_model(store, catalog) is None, "two models and no default: no guessing"
    put("gritlm-7b:Q4_K_M", tiny_b_model_path)
    assert default_model(store, catalog).name == "gritlm-7b:Q4_K_M"
