"""One Settings, resolved once: flag > GRITDESK_<KEY> > config.toml > default, with errors
that name the key and where the bad value came from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gritdesk.ingest.byte_sizes import MIB
from gritdesk.runtime.engine_settings import DEFAULT_CONTEXT, KvType
from gritdesk.settings import ConfigError, Settings, load_settings


def _load(tmp_path: Path, config: str = "", env: dict[str, str] | None = None, **flags):
    path = tmp_path / "config.toml"
    path.write_text(config)
    return load_settings(flags=flags, environ=env or {}, config_file=path)


def test_defaults_when_nothing_is_said(tmp_path: Path) -> None:
    settings = _load(tmp_path)
    assert settings.context == DEFAULT_CONTEXT and settings.kv_type is KvType.F16
    assert settings.model is None and settings.flash_attn is False
    assert settings.engine_settings().n_ctx == DEFAULT_CONTEXT


def test_flag_beats_environment_beats_file(tmp_path: Path) -> None:
    config = 'context = 1024\nkv_type = "q4_0"\nmodel = "from-file.gguf"\n'
    env = {"GRITDESK_CONTEXT": "2048", "GRITDESK_KV_TYPE": "q8_0"}
    from_file = _load(tmp_path, config)
    assert (from_file.context, from_file.kv_type, from_file.model) == (
        1024, KvType.Q4_0, "from-file.gguf",
    )
    from_env = _load(tmp_path, config, env)
    assert (from_env.context, from_env.kv_type) == (2048, KvType.Q8_0)
    from_flag = _load(tmp_path, config, env, context=3072, kv_type=None)
    assert (from_flag.context, from_flag.kv_type) == (3072, KvType.Q8_0)  # None: not given


def test_index_and_serve_tables(tmp_path: Path) -> None:
    config = (
        "[index]\nmax_file_mib = 2\ncsv_max_mib = 0.5\nocr = false\n"
        'exclude = ["*.log"]\nconfirm_above_min = 1\n'
        '[serve]\nport = 9000\nhost = "localhost"\n'
    )
    settings = _load(tmp_path, config, {"GRITDESK_API_KEY": "secret"})
    assert settings.index.limits.file_bytes == 2 * MIB and settings.index.limits.ocr is False
    assert settings.index.selection.kind_limits["csv"] == MIB // 2
    assert settings.index.selection.exclude == ("*.log",)
    assert settings.index.confirm_above_s == 60
    assert (settings.serve.port, settings.serve.host, settings.serve.api_key) == (
        9000, "localhost", "secret",
    )


@pytest.mark.parametrize(
    ("config", "env", "flags", "message"),
    [
        ("context = 100\n", {}, {}, "config.toml: context: must be a whole number >= 256"),
        ('kv_type = "q5"\n', {}, {}, "config.toml: kv_type: must be one of f16, q8_0, q4_0"),
        ("", {"GRITDESK_CONTEXT": "lots"}, {}, "GRITDESK_CONTEXT: must be a whole number"),
        ("", {}, {"context": 10}, "--context: must be a whole number >= 256"),
        ("flash_attn = 1\n", {}, {}, "config.toml: flash_attn: must be true or false"),
        ("contxt = 2048\n", {}, {}, "config.toml: unknown key contxt"),
        ("[index]\nmax_file_mb = 3\n", {}, {}, "unknown key index.max_file_mb"),
        ("[index]\ninclude = '*.csv'\n", {}, {}, "index.include: must be a list of glob"),
        ("[index]\ncsv_max_mib = -1\n", {}, {}, "index.csv_max_mib: must be a number >= 0"),
        ("[index]\nskip_vendored = 1\n", {}, {}, "index.skip_vendored: must be true or false"),
        ("[index]\nparse_timeout_s = -1\n", {}, {}, "index.parse_timeout_s: must be a number > 0"),
        ("[index]\nparse_memory_mib = 'lots'\n", {}, {}, "parse_memory_mib: must be a number"),
        ("[index]\nocr = 'no'\n", {}, {}, "index.ocr: must be true or false"),
        ('recipe = "gritlm9"\n', {}, {}, "config.toml: recipe: unknown recipe 'gritlm9'"),
        ("[serve]\nport = -1\n", {}, {}, "serve.port: must be a whole number >= 0"),
        ("context = \n", {}, {}, "config.toml: not valid TOML"),
        ('kv_disk_format = "zip"\n', {}, {}, "kv_disk_format: must be one of raw, q8_rows"),
    ],
)
def test_bad_values_name_the_key_and_the_source(
    tmp_path: Path, config: str, env: dict, flags: dict, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, config, env, **flags)
    assert message in str(caught.value)


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().context = 1  # type: ignore[misc]


def test_cli_reports_a_bad_config_value_without_a_traceback(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.toml").write_text('kv_type = "q5"\n')
    proc = subprocess.run(
        [sys.executable, "-c", "from gritdesk.cli import main; main()", "roots", "list"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "GRITDESK_DATA_DIR": str(data)},
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"{data / 'config.toml'}: kv_type: must be one of" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_environment_text_is_read_as_the_key_type(tmp_path: Path) -> None:
    env = {"GRITDESK_FLASH_ATTN": "yes", "GRITDESK_KV_BUDGET_GIB": "0.5", "GRITDESK_DB": "~/x.db"}
    settings = _load(tmp_path, "", env)
    assert settings.flash_attn is True and settings.kv_budget_gib == 0.5
    assert settings.db == Path("~/x.db").expanduser()
    with pytest.raises(ConfigError, match=r"config\.toml: flash_attn: must be true or false"):
        _load(tmp_path, 'flash_attn = "yes"\n')  # a file is typed TOML: a string is refused
