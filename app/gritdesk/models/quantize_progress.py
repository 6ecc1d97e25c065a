"""Run llama.cpp's quantizer with a progress bar.

`llama_model_quantize` has no progress callback, but it writes tensors to the output
file one after another, so the output's size against an estimate of its final size is
a fair progress measure. The estimate: metadata as in the source, 1-D tensors (norms)
kept as F32, the output head at Q6_K or better, every other tensor at the type's nominal
bits per weight. The bar is held below 100% until the quantizer returns, since K-quant
mixes and fallbacks make the estimate approximate.
"""

from __future__ import annotations

import threading
from pathlib import Path

import gguf

from gritdesk.models.errors import ModelsError
from gritdesk.models.progress import Progress, SilentProgress

# Average bits per weight of 2-D tensors, as llama.cpp's quantize tool lists them.
BITS_PER_WEIGHT: dict[str, float] = {
    "F16": 16.0,
    "Q8_0": 8.5,
    "Q6_K": 6.5625,
    "Q5_K_M": 5.69,
    "Q5_K_S": 5.54,
    "Q5_0": 5.5,
    "Q4_K_M": 4.89,
    "Q4_K_S": 4.58,
    "Q4_0": 4.5,
    "Q3_K_M": 3.91,
    "Q2_K": 3.35,
}
OUTPUT_BITS = BITS_PER_WEIGHT["Q6_K"]
POLL_SECONDS = 0.2


def estimate_quantized_size(src: Path, qtype: str) -> int:
    """Approximate size in bytes of `src` quantized to `qtype`."""
    bits = BITS_PER_WEIGHT.get(qtype.upper())
    if bits is None:
        choices = ", ".join(BITS_PER_WEIGHT)
        raise ModelsError(f"quantization type {qtype!r}: choose one of {choices}")
    reader = gguf.GGUFReader(src)
    header = min((int(t.data_offset) for t in reader.tensors), default=0)
    data = 0.0
    for tensor in reader.tensors:
        n = int(tensor.n_elements)
        if len(tensor.shape) == 1:
            data += n * 4
        elif tensor.name == "output.weight":  # llama.cpp keeps the LM head at Q6_K or better
            data += n * max(bits, OUTPUT_BITS) / 8
        else:
            data += n * bits / 8
    return header + int(data)


def _output_size(dst: Path) -> int:
    """Size of whatever the quantizer is writing for `dst` (it may use a temporary name)."""
    sizes = [p.stat().st_size for p in dst.parent.glob(dst.name + "*") if p.is_file()]
    return max(sizes, default=0)


def quantize_with_progress(
    src: Path, dst: Path, qtype: str, progress: Progress | None = None
) -> Path:
    """runtime.quantize.quantize_model(src, dst, qtype), with the output's growth as progress."""
    from gritdesk.runtime.quantize import quantize_model

    estimate = estimate_quantized_size(src, qtype)
    done = threading.Event()
    label = f"quantize {src.name} -> {qtype.upper()}"
    with (progress or SilentProgress()).task(label, estimate) as bar:

        def watch() -> None:
            while not done.wait(POLL_SECONDS):
                bar.set(min(_output_size(dst), int(estimate * 0.99)))

        watcher = threading.Thread(target=watch, name="quantize-progress", daemon=True)
        watcher.start()
        try:
            out = quantize_model(src, dst, qtype)  # ctypes releases the GIL while it runs
        finally:
            done.set()
            watcher.join()
        final = out.stat().st_size
        bar.set(final, total=final)
    return out
