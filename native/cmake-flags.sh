#!/usr/bin/env bash
# Prints the CMake flags for this platform's llama.cpp build (sourced by build.sh).
# Platform choices live here and nowhere else. Extra flags: GRITDESK_CMAKE_ARGS,
# e.g. GRITDESK_CMAKE_ARGS="-DGGML_CUDA=ON" for an NVIDIA machine (untested here).
set -euo pipefail

flags=(
  -DLLAVA_BUILD=OFF            # no multimodal library: gritdesk reads text
  -DLLAMA_BUILD_TESTS=OFF
  -DLLAMA_BUILD_EXAMPLES=OFF
  -DLLAMA_BUILD_TOOLS=OFF
  -DLLAMA_BUILD_SERVER=OFF
  -DGGML_NATIVE=ON             # tuned for this CPU; build.sh keys the cached wheel by its ISA;
                               # patch 0004 keeps AMX out (it crashes quantized models)
)

case "$(uname -s)" in
  Darwin)
    # macOS (Apple silicon included): Metal with the shader library embedded, Accelerate for
    # BLAS (tests/runtime/test_build_check.py checks it with a fake uname).
    flags+=(-DGGML_METAL=ON -DGGML_METAL_EMBED_LIBRARY=ON)
    ;;
  Linux)
    # Laptops, WSL and ARM boards: CPU backend; OpenMP only where the compiler has it.
    ;;
esac

echo "${flags[*]} ${GRITDESK_CMAKE_ARGS:-}"
