#!/usr/bin/env bash
# Prints the key of the cached llama-cpp-python wheel (build.sh: $cache/wheels/<key>/): a
# hash of everything that changes what the build produces, so a wheel is reused only where
# it was built for exactly this: the sdist, the patches, the CMake flags (cmake-flags.sh,
# GRITDESK_CMAKE_ARGS included), the OS and machine, the CPU's instruction set as the
# compiler sees it, the Python platform, and the compilers when CC, CXX, CUDACXX or
# CUDAHOSTCXX name them (building with another compiler, the remedy for a crash from two
# C++ runtimes mixed, then gets its own wheel; unset, the key is what it always was).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
# shellcheck source=native/recipe.env
source native/recipe.env
PYTHON="${PYTHON:-python3}"
cxx="${CXX:-$(command -v c++ || command -v g++ || command -v clang++ || true)}"
cmake_args="$(bash native/cmake-flags.sh)"

{
  echo "$LLAMA_CPP_PYTHON_SDIST_SHA256"
  cat native/patches/*.patch
  echo "$cmake_args"
  uname -sm
  # GGML_NATIVE tunes the wheel for this CPU: key it by the ISA the compiler sees here,
  # so a cache shared between machines (a synced home, a container image) never hands
  # this wheel to a CPU that lacks one of its instructions (SIGILL).
  "$cxx" -march=native -dM -E -x c /dev/null 2>/dev/null | LC_ALL=C sort || true
  "$PYTHON" -c 'import sysconfig; print(sysconfig.get_platform())'
  for var in CC CXX CUDACXX CUDAHOSTCXX; do
    compiler="${!var:-}"
    [ -n "$compiler" ] || continue
    echo "$var=$compiler"
    "$compiler" --version 2>/dev/null | head -n 1 || true
  done
} | "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:16])'
