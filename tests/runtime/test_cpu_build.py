"""The llama.cpp build runs on the CPU it meets: no AMX path (it segfaults on quantized
models, llama.cpp issue 20824), and quantized models embed, generate and answer from a
restored cache in a child process, so a crash is a failed test, not a dead test run."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import llama_cpp as ll
import numpy as np
import pytest

from gritdesk.runtime.engine import Engine, EngineSettings
from gritdesk.runtime.quantize import quantize_model

REPO = Path(__file__).resolve().parents[2]
AMX_PATCH = REPO / "native" / "patches" / "0004-native-build-without-amx.patch"
X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


def system_info() -> str:
    return ll.llama_print_system_info().decode()


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    match = re.search(r"^flags\s*:\s*(.*)$", text, re.MULTILINE)
    return set(match.group(1).split()) if match else set()


def test_amx_is_not_compiled_in() -> None:
    info = system_info()
    assert "CPU" in info  # the string we read is the real system info
    assert "AMX_INT8 = 1" not in info, (
        f"AMX is compiled in (CPU flags: {sorted(f for f in cpu_flags() if 'amx' in f)}): "
        f"{info}"
    )


def _predefined(compiler: str, *flags: str) -> str:
    proc = subprocess.run(
        [compiler, *flags, "-dM", "-E", "-x", "c", os.devnull],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return proc.stdout


def test_patch_flags_switch_amx_off_on_an_amx_cpu() -> None:
    """What -march=native means on Sapphire Rapids, with and without patch 0004's flags."""
    flags = re.search(r"list\(APPEND ARCH_FLAGS (-mno-amx[^)]*)\)", AMX_PATCH.read_text())
    assert flags is not None, "patch 0004 no longer appends the -mno-amx flags"
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    assert compiler is not None, "no C compiler found (build.sh needs one too)"
    if not X86:  # AMX is an x86 extension: an ARM build can have no AMX path at all
        assert "AMX" not in system_info()
        return
    on_amx_cpu = _predefined(compiler, "-march=sapphirerapids")
    assert "__AMX_INT8__" in on_amx_cpu  # the probe sees AMX without the patch's flags
    patched = _predefined(compiler, "-march=sapphirerapids", *flags.group(1).split())
    assert "__AMX_INT8__" not in patched and "__AMX_TILE__" not in patched
    assert "__AVX512F__" in patched  # everything else -march=native finds stays


CHILD = r"""
import json, sys
import numpy as np
from gritdesk.runtime.engine import Engine, EngineSettings, GenerationOptions
from gritdesk.runtime.recipes import GRITLM
doc = "Invoices above five thousand euros need two signatures: the team lead and finance."
with Engine(sys.argv[1], EngineSettings(n_ctx=512, kv_type=sys.argv[2])) as e:
    vec = e.embed([doc, "the cafeteria closes at three"])
    _, states = e.embed_documents_with_kv([doc])
    answer = "".join(e.generate("Who signs large invoices?", GenerationOptions(max_tokens=8)))
    e.reset()
    n = e.restore_at(states[0], 0)
    e.prefill(e.tokenize(GRITLM.rag.doc_cached_suffix.format(query="Who signs?")), n)
    logits = e.last_logits()
print(json.dumps({"vec": vec.tolist(), "logits": logits.tolist(), "answer": answer}))
"""


def run_child(model: Path, kv_type: str) -> dict[str, list]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(model), kv_type],
        capture_output=True, text=True, timeout=300, env=dict(os.environ),
    )  # fmt: skip
    assert proc.returncode == 0, f"exit {proc.returncode} on {system_info()}: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def unquantized(tiny_model_path: Path) -> dict[str, list]:
    return run_child(tiny_model_path, "f16")


def cosine(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


@pytest.mark.parametrize(("qtype", "kv_type", "floor"), [
    ("Q8_0", "f16", 0.99), ("Q4_0", "f16", 0.8), ("Q4_1", "q8_0", 0.8),
])  # fmt: skip
def test_quantized_model_embeds_generates_and_answers_from_restored_cache(
    tiny_model_path: Path,
    tmp_path: Path,
    unquantized: dict[str, list],
    qtype: str,
    kv_type: str,
    floor: float,
) -> None:
    model = quantize_model(tiny_model_path, tmp_path / f"tiny-{qtype}.gguf", qtype)
    with Engine(model, EngineSettings(n_ctx=256)) as engine:  # really quantized
        assert engine.summary.metadata.get("general.file_type") not in (None, 0)
    got = run_child(model, kv_type)
    assert got["answer"]
    for q_vec, f_vec in zip(got["vec"], unquantized["vec"], strict=True):
        # close to the unquantized model (4-bit weights of a 64-wide random model drift to
        # ~0.89; unrelated vectors in 64 dimensions sit near 0)
        assert cosine(q_vec, f_vec) >= floor
    assert cosine(got["logits"], unquantized["logits"]) >= floor
