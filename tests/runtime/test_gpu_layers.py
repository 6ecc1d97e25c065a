"""`gpu_layers`: one setting from flag to llama.cpp's model params, shown where the model is.

This machine's llama.cpp is a CPU build, so the default resolves to 0 here; on a build with
a GPU backend it is -1 (all layers).
"""

from __future__ import annotations

import json
from pathlib import Path

import llama_cpp as ll
import pytest
from typer.testing import CliRunner

import gritdesk.runtime.engine as engine_module
from gritdesk.commands.models import models_app
from gritdesk.runtime.engine import Engine, EngineSettings, resolved_gpu_layers
from gritdesk.runtime.engine_settings import describe_gpu_layers
from gritdesk.settings import ConfigError, load_settings
from gritdesk.tui.backend import ModelLabel


def loaded_with(model: Path, monkeypatch: pytest.MonkeyPatch, **settings: object) -> int:
    """The n_gpu_layers an Engine hands llama_model_load_from_file."""
    seen: list[int] = []
    real = ll.llama_model_load_from_file

    def spy(path: bytes, params: ll.llama_model_params) -> object:
        seen.append(params.n_gpu_layers)
        return real(path, params)

    monkeypatch.setattr(engine_module.ll, "llama_model_load_from_file", spy)
    with Engine(model, EngineSettings(n_ctx=256, **settings)) as engine:  # type: ignore[arg-type]
        assert engine.gpu_layers == seen[0]
    return seen[0]


def test_cpu_build_defaults_to_no_gpu_layers() -> None:
    assert not ll.llama_supports_gpu_offload()
    assert resolved_gpu_layers(None) == 0
    assert resolved_gpu_layers(-1) == -1 and resolved_gpu_layers(7) == 7


def test_the_value_reaches_the_model_params(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert loaded_with(tiny_model_path, monkeypatch) == 0  # default on this CPU build
    assert loaded_with(tiny_model_path, monkeypatch, n_gpu_layers=1) == 1
    assert loaded_with(tiny_model_path, monkeypatch, n_gpu_layers=-1) == -1  # CPU: runs anyway


def test_gpu_layers_from_flag_env_and_config(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("gpu_layers = 12\n")

    def load(env: dict[str, str] | None = None, **flags: object) -> int | None:
        return load_settings(flags=flags, environ=env or {}, config_file=config).gpu_layers

    assert load() == 12
    assert load({"GRITDESK_GPU_LAYERS": "-1"}) == -1
    assert load({"GRITDESK_GPU_LAYERS": "-1"}, gpu_layers=3) == 3
    settings = load_settings(flags={"gpu_layers": 5}, environ={}, config_file=config)
    assert settings.engine_settings().n_gpu_layers == 5
    config.write_text("")
    assert load() is None  # not set: the engine decides (all with a GPU backend, else 0)
    with pytest.raises(ConfigError, match="GRITDESK_GPU_LAYERS"):
        load({"GRITDESK_GPU_LAYERS": "-2"})
    with pytest.raises(ConfigError, match="--gpu-layers"):
        load(gpu_layers=1.5)


def test_models_info_and_status_line_show_gpu_layers(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    result = runner.invoke(models_app, ["info", str(tiny_model_path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["gpu_layers"] == 0
    monkeypatch.setenv("GRITDESK_GPU_LAYERS", "1")
    result = runner.invoke(models_app, ["info", str(tiny_model_path)])
    assert "GPU layers" in result.stdout and "1 of 2 on GPU" in result.stdout
    result = runner.invoke(models_app, ["info", str(tiny_model_path), "--gpu-layers", "-1"])
    assert "all 2 on GPU" in result.stdout
    assert describe_gpu_layers(0, 2) == "none (CPU)"
    label = ModelLabel("tiny", "F32", gpu_layers=describe_gpu_layers(0, 2))
    assert str(label) == "tiny F32 · GPU layers: none (CPU)"
