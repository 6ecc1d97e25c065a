"""After a build, load a tiny model in a child process: a crash of the llama.cpp build becomes
a message naming the signal, the wheel and the likely cause, not a dead `gritdesk` later.

build.sh runs `python -m gritdesk.build_check` once per installed wheel. The child loads
gritdesk's synthetic `tiny` model (models/synthetic.py: written here, no download) through
the Engine with its default GPU layers (all, on a GPU build), embeds a text and generates two
tokens, with llama.cpp's log on its stderr so the last lines before a crash say where it was.

The crash this is for: a CUDA build segfaulting in `llama_model::print_info` inside
`libggml-cuda.so`, the first thing a model load prints. The likely cause is two C++ runtimes
in one process: the libraries were compiled by one compiler (its libstdc++ headers and ABI)
and run against another libstdc++ (the system's, or a conda environment's that comes first).
So a crash report shows `ldd` of the ggml libraries (which libstdc++ each resolves) and the
compiler each library records in its `.comment` section.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata, util
from pathlib import Path
from urllib.parse import unquote, urlparse

CHILD = r"""
import sys
from gritdesk.runtime.engine import Engine, EngineSettings, GenerationOptions
settings = EngineSettings(n_ctx=256, n_gpu_layers=None if sys.argv[2] == "default" else 0)
with Engine(sys.argv[1], settings) as engine:
    vector = engine.embed_documents(["a tiny model loads, embeds and generates"])[0]
    text = "".join(engine.generate("hello", GenerationOptions(max_tokens=2)))
print(f"loaded: {engine.gpu_layers} GPU layers, {vector.shape[0]}-d vectors", flush=True)
"""
TIMEOUT_S = 300
GPU_LIBRARIES = ("libggml-cuda", "libggml-metal", "libggml-vulkan", "libggml-hip", "libggml-sycl")


@dataclass(frozen=True)
class LoadCheck:
    ok: bool
    message: str


def llama_package_dir() -> Path | None:
    """llama_cpp's folder, found without importing it (importing loads the libraries)."""
    spec = util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def installed_wheel() -> str:
    """The wheel pip installed llama-cpp-python from (build.sh's cached one), as pip recorded
    it; else the installed version."""
    try:
        dist = metadata.distribution("llama_cpp_python")
    except metadata.PackageNotFoundError:
        return "llama-cpp-python is not installed"
    try:
        url = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
    except ValueError:
        url = ""
    if url.startswith("file://"):
        return unquote(urlparse(url).path)
    return f"llama-cpp-python {dist.version} ({url or 'from an index, not build.sh'})"


def native_libraries(package: Path | None) -> list[Path]:
    """The ggml and llama shared libraries of the installed llama_cpp, one per library (a
    wheel holds `libggml.so`, `libggml.so.0` and `libggml.so.0.25.3` as three copies)."""
    if package is None or not (package / "lib").is_dir():
        return []
    seen: dict[str, Path] = {}
    for path in sorted((package / "lib").iterdir(), key=lambda p: (len(p.name), p.name)):
        if path.name.startswith(("libggml", "libllama", "ggml", "llama")) and (
            ".so" in path.name or path.suffix in (".dylib", ".dll")
        ):
            seen.setdefault(path.name.split(".")[0], path)
    return sorted(seen.values())


def _strings(path: Path, pattern: bytes) -> list[bytes]:
    try:
        with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return sorted(set(re.findall(pattern, m)))
    except (OSError, ValueError):
        return []


def built_by(path: Path) -> str:
    """The compilers a library records in its `.comment` section (GCC and clang write one)."""
    found = _strings(path, rb"(?:GCC: \([^\x00]{0,80}\) [0-9][0-9.]*|clang version [0-9][0-9.]*)")
    return ", ".join(f.decode(errors="replace") for f in found) or "not recorded"


def _minor(glibcxx: str) -> int:
    return int(glibcxx.rsplit(".", 1)[1])


def _newest_glibcxx(path: Path) -> str:
    """The newest GLIBCXX_3.4.N symbol version a library needs (or a libstdc++ provides)."""
    found = [v.decode() for v in _strings(path, rb"GLIBCXX_3\.4\.[0-9]+")]
    return max(found, key=_minor) if found else ""


def linkage_report(libraries: Sequence[Path]) -> str:
    """`ldd` (Linux) or `otool -L` (macOS) of each library, where the tool exists, with the
    compiler it was built by, the libstdc++ it resolves and the newest GLIBCXX it needs."""
    tool = ["ldd"] if shutil.which("ldd") else ["otool", "-L"] if shutil.which("otool") else None
    lines: list[str] = []
    runtimes: set[str] = set()
    for library in libraries:
        lines.append(f"{library} (built by: {built_by(library)})")
        needs = _newest_glibcxx(library)
        if tool is None:
            continue
        try:
            out = subprocess.run(
                [*tool, str(library)], capture_output=True, text=True, timeout=30
            ).stdout
        except (OSError, subprocess.TimeoutExpired) as exc:
            out = f"({' '.join(tool)} failed: {exc})"
        for line in out.splitlines()[1 if tool[0] == "otool" else 0 :]:
            lines.append("    " + line.strip())
            match = re.search(r"libstdc\+\+[^ ]*\s*=>\s*(\S+)", line)
            if match:
                runtime = os.path.realpath(match.group(1))
                runtimes.add(runtime)
                provides = _newest_glibcxx(Path(runtime))
                lines.append(
                    f"    -> libstdc++ {runtime}: provides up to {provides or '?'}, "
                    f"this library needs up to {needs or '?'}"
                )
                if needs and provides and _minor(needs) > _minor(provides):
                    lines.append("    NEWER: built against a newer libstdc++ than the one it loads")
    if tool is None:
        lines.append("(neither ldd nor otool found: linkage not shown)")
    if len(runtimes) > 1:
        lines.append("MIXED: the libraries resolve different libstdc++: " + ", ".join(runtimes))
    return "\n".join(lines)


def _causes(sig: signal.Signals | None, gpu_build: bool) -> list[str]:
    mixed = (
        "two C++ runtimes mixed: the wheel's libraries were compiled by one compiler (its "
        "libstdc++ headers and ABI) and run against another libstdc++ (the system's, or a conda "
        "or toolkit environment's found first on LD_LIBRARY_PATH). A CUDA build segfaulting in "
        "llama_model::print_info inside libggml-cuda.so is this. Compare 'built by' with the "
        "libstdc++ each library resolves below; rebuild with the compiler whose libstdc++ the "
        "system loads (CXX=g++ CUDAHOSTCXX=g++ ./build.sh: a set compiler gets its own cached "
        "wheel), or run with that compiler's libstdc++ first (LD_LIBRARY_PATH)"
    )
    if sig in (signal.SIGSEGV, signal.SIGBUS):
        causes = [mixed]
        if gpu_build:
            causes.append(
                "a GPU driver older than the toolkit the wheel was built with (nvidia-smi "
                "shows the driver's CUDA version): update the driver or build with the "
                "toolkit it supports"
            )
        causes.append(
            "ggml's AMX matmul compiled in (Intel Sapphire Rapids and later): patch 0004 keeps "
            "it out; llama_print_system_info() must not show AMX_INT8 = 1"
        )
        return causes
    if sig is signal.SIGILL:
        return [
            "an instruction this CPU lacks: the wheel was built for another CPU (GGML_NATIVE "
            "on another machine sharing this cache, or GRITDESK_CMAKE_ARGS forcing AVX-512)"
        ]
    if sig is signal.SIGABRT:
        return [
            "llama.cpp stopped on an assertion (GGML_ASSERT: the log above names it)",
            "a C++ exception thrown across two runtimes (terminate): " + mixed,
        ]
    if sig is signal.SIGKILL:
        return ["the system ran out of memory (the kernel killed it), or it was killed"]
    return [
        "the child's error above (a Python error: a library that does not load, e.g. a "
        "missing libcudart or libstdc++ symbol, shows here)",
        mixed,
    ]


def _signal_of(returncode: int) -> signal.Signals | None:
    number = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    try:
        return signal.Signals(number) if number else None
    except ValueError:
        return None


def _child_env() -> dict[str, str]:
    """This process's environment, llama.cpp's log on, and this gritdesk importable."""
    app = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH", "")
    return {
        **os.environ,
        "GRITDESK_LLAMA_LOG": "1",
        "PYTHONPATH": app + (os.pathsep + path if path else ""),
    }


def _run(command: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            list(command), capture_output=True, text=True, timeout=timeout, env=_child_env()
        )
    except subprocess.TimeoutExpired:
        return None


def run_load_check(
    model: Path | None = None,
    *,
    child: Sequence[str] | None = None,
    wheel: str | None = None,
    timeout: float = TIMEOUT_S,
) -> LoadCheck:
    """Load `model` (default: the synthetic tiny model) in a child Python; `child` replaces
    the child's command (tests: one that kills itself with a signal)."""
    started = time.perf_counter()
    if child is None:
        from gritdesk.models.synthetic import synthetic_model_path

        model = model or synthetic_model_path("tiny")
        child = [sys.executable, "-c", CHILD, str(model), "default"]
    proc = _run(child, timeout)
    if proc is not None and proc.returncode == 0:
        last = proc.stdout.strip().splitlines()[-1:] or ["no output"]
        return LoadCheck(True, f"{last[0]} ({time.perf_counter() - started:.1f} s)")
    wheel = wheel or installed_wheel()
    package = llama_package_dir()
    libraries = native_libraries(package)
    gpu_build = any(lib.name.startswith(GPU_LIBRARIES) for lib in libraries)
    if proc is None:
        what, sig = f"did not finish in {timeout:.0f} s (a hang: a GPU driver or a deadlock)", None
    else:
        sig = _signal_of(proc.returncode)
        what = (
            f"died by signal {sig.name} ({sig.value}): {signal.strsignal(sig) or ''}"
            if sig is not None
            else f"exited with status {proc.returncode}"
        )
    lines = [
        f"the llama.cpp build {what} while a child process loaded a tiny model",
        f"  wheel: {wheel}",
        f"  llama_cpp: {package or 'not found'}",
        f"  command: {shlex.join(child)}",
    ]
    if proc is not None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        if tail:
            lines.append("  last lines it wrote:")
            lines += [f"    {line}" for line in tail]
    lines.append("likely causes, most likely first:")
    lines += [f"  - {cause}" for cause in _causes(sig, gpu_build)]
    if gpu_build and model is not None and sig is not None:
        cpu = _run([sys.executable, "-c", CHILD, str(model), "cpu"], timeout)
        on_cpu = "loads" if cpu is not None and cpu.returncode == 0 else "crashes too"
        lines.append(f"with no layers on the GPU (gpu_layers 0) the same model {on_cpu}")
    lines.append("linkage of the ggml libraries:")
    lines += [f"  {line}" for line in linkage_report(libraries).splitlines()]
    return LoadCheck(False, "\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gritdesk.build_check",
        description="Load a tiny model with the installed llama.cpp build in a child process; "
        "a crash becomes a message naming the signal, the wheel and the likely cause.",
    )
    parser.add_argument("--wheel", help="the wheel being checked (default: what pip recorded)")
    parser.add_argument("--model", type=Path, help="a GGUF to load (default: synthetic tiny)")
    parser.add_argument("--child-command", help="run this instead of the loading child (tests)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S)
    args = parser.parse_args(argv)
    child = shlex.split(args.child_command) if args.child_command else None
    result = run_load_check(args.model, child=child, wheel=args.wheel, timeout=args.timeout)
    if result.ok:
        print(f"load check: {result.message}")
        return 0
    print(f"load check failed: {result.message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
