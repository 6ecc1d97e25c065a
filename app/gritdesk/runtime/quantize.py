"""llama.cpp's own quantizer (llama_model_quantize), behind a checked Python call."""

from __future__ import annotations

import os
from pathlib import Path

import llama_cpp as ll

from gritdesk.runtime.engine import init_backend, last_llama_error
from gritdesk.runtime.errors import ModelFileError, RuntimeFailure
from gritdesk.runtime.gguf_check import check_gguf

QUANT_TYPES: dict[str, int] = {
    "F16": ll.LLAMA_FTYPE_MOSTLY_F16,
    "Q8_0": ll.LLAMA_FTYPE_MOSTLY_Q8_0,
    "Q6_K": ll.LLAMA_FTYPE_MOSTLY_Q6_K,
    "Q5_K_M": ll.LLAMA_FTYPE_MOSTLY_Q5_K_M,
    "Q5_K_S": ll.LLAMA_FTYPE_MOSTLY_Q5_K_S,
    "Q5_0": ll.LLAMA_FTYPE_MOSTLY_Q5_0,
    "Q4_K_M": ll.LLAMA_FTYPE_MOSTLY_Q4_K_M,
    "Q4_K_S": ll.LLAMA_FTYPE_MOSTLY_Q4_K_S,
    "Q4_1": ll.LLAMA_FTYPE_MOSTLY_Q4_1,
    "Q4_0": ll.LLAMA_FTYPE_MOSTLY_Q4_0,
    "Q3_K_M": ll.LLAMA_FTYPE_MOSTLY_Q3_K_M,
    "Q2_K": ll.LLAMA_FTYPE_MOSTLY_Q2_K,
}


class QuantizeError(RuntimeFailure):
    pass


def quantize_model(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    qtype: str,
    *,
    allow_requantize: bool = False,
) -> Path:
    """Quantize GGUF `src` into `dst` as `qtype` (e.g. Q4_K_M); `dst` appears only when done.
    llama.cpp converts an already quantized file only with `allow_requantize`."""
    key = qtype.upper()
    if key not in QUANT_TYPES:
        raise QuantizeError(f"quantization type {qtype!r}: choose one of {', '.join(QUANT_TYPES)}")
    src, dst = Path(src), Path(dst)
    check_gguf(src)
    if dst.resolve() == src.resolve():
        raise ModelFileError(dst, "output would overwrite the input")
    init_backend()
    params = ll.llama_model_quantize_default_params()
    params.ftype = QUANT_TYPES[key]
    params.nthread = os.cpu_count() or 2
    params.allow_requantize = allow_requantize
    tmp = dst.with_name(f"{dst.name}.{os.getpid()}.partial")  # two writers never share one
    dst.parent.mkdir(parents=True, exist_ok=True)
    rc = ll.llama_model_quantize(str(src).encode(), str(tmp).encode(), params)
    if rc != 0:
        tmp.unlink(missing_ok=True)
        detail = last_llama_error() or f"code {rc}"
        raise QuantizeError(f"quantizing {src} to {key} failed ({detail})")
    os.replace(tmp, dst)
    return dst
