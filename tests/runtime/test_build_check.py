"""build.sh's load check (app/gritdesk/build_check.py): a tiny model loads in a child process
on this build, and a child that dies by a signal becomes a report naming the signal, the
wheel, the likely causes and the ggml libraries' linkage (`ldd`). Also the wheel cache's key
(native/wheel-key.sh) and the platform's CMake flags (native/cmake-flags.sh)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gritdesk.build_check import installed_wheel, run_load_check

REPO = Path(__file__).resolve().parents[2]
CHECK = [sys.executable, "-m", "gritdesk.build_check"]


def dies_by(name: str) -> list[str]:
    """A child that writes a line, as llama.cpp's log would, then kills itself."""
    code = (
        "import os, signal, sys; print('llama_model_loader: loaded meta data', file=sys.stderr,"
        f" flush=True); os.kill(os.getpid(), signal.{name})"
    )
    return [sys.executable, "-c", code]


@pytest.mark.parametrize(
    ("name", "cause"),
    [
        ("SIGSEGV", "two C++ runtimes mixed"),
        ("SIGILL", "an instruction this CPU lacks"),
        ("SIGABRT", "GGML_ASSERT"),
    ],
)
def test_a_crash_is_reported_with_the_signal_the_wheel_and_the_causes(
    name: str, cause: str
) -> None:
    result = run_load_check(child=dies_by(name), timeout=60)
    assert not result.ok
    message = result.message
    assert f"died by signal {name}" in message
    assert f"wheel: {installed_wheel()}" in message
    assert cause in message
    assert "llama_model_loader: loaded meta data" in message  # the child's last words
    if name == "SIGSEGV":  # the known CUDA crash and its suspected cause are named
        assert "llama_model::print_info" in message and "libggml-cuda.so" in message
    assert "libggml-base" in message and "built by:" in message
    if sys.platform.startswith("linux") and shutil.which("ldd"):
        assert "libstdc++.so.6 =>" in message  # ldd of the ggml libraries
        assert "-> libstdc++ " in message and "provides up to GLIBCXX_3.4." in message


def test_a_child_that_fails_without_a_signal_shows_its_error() -> None:
    code = "import sys; sys.exit('OSError: libcudart.so.12: cannot open shared object file')"
    result = run_load_check(child=[sys.executable, "-c", code], timeout=60)
    assert not result.ok
    assert "exited with status 1" in result.message and "libcudart.so.12" in result.message


def test_the_command_line_exits_non_zero_with_the_report() -> None:
    proc = subprocess.run(
        [*CHECK, "--child-command", shlex.join(dies_by("SIGSEGV"))],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "load check failed" in proc.stderr and "died by signal SIGSEGV" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_check_passes_on_this_build() -> None:
    proc = subprocess.run(CHECK, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "load check: loaded" in proc.stdout


def test_build_sh_runs_the_check_after_installing() -> None:
    script = (REPO / "build.sh").read_text()
    install = script.index("pip install -q --disable-pip-version-check --force-reinstall")
    check = script.index("-m gritdesk.build_check")
    assert install < check < script.index('say "ready:')


def run_script(name: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        ["bash", str(REPO / "native" / name)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def clean_env(**extra: str) -> dict[str, str]:
    drop = ("GRITDESK_CMAKE_ARGS", "CC", "CXX", "CUDACXX", "CUDAHOSTCXX")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def test_the_cached_wheel_is_keyed_by_cmake_args_and_named_compilers() -> None:
    plain = run_script("wheel-key.sh", clean_env())
    assert len(plain) == 16 and plain == run_script("wheel-key.sh", clean_env())
    cuda = run_script("wheel-key.sh", clean_env(GRITDESK_CMAKE_ARGS="-DGGML_CUDA=ON"))
    assert cuda != plain
    compiler = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if compiler is not None:  # a compiler named by CXX gets its own wheel
        assert run_script("wheel-key.sh", clean_env(CXX=compiler)) not in (plain, cuda)


@pytest.mark.parametrize(("system", "metal"), [("Darwin", True), ("Linux", False)])
def test_cmake_flags_build_metal_on_apple_silicon(tmp_path: Path, system: str, metal: bool) -> None:
    fake = tmp_path / "uname"
    fake.write_text(f'#!/bin/sh\n[ "$1" = -m ] && echo arm64 || echo {system}\n')
    fake.chmod(0o755)
    env = clean_env(PATH=f"{tmp_path}{os.pathsep}{os.environ['PATH']}", GRITDESK_CMAKE_ARGS="-DX=1")
    flags = run_script("cmake-flags.sh", env).split()
    assert ("-DGGML_METAL=ON" in flags) is metal
    assert ("-DGGML_METAL_EMBED_LIBRARY=ON" in flags) is metal
    assert flags[-1] == "-DX=1"  # GRITDESK_CMAKE_ARGS last: it overrides the platform's
