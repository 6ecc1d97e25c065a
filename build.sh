#!/usr/bin/env bash
# Sets gritdesk up in ./.venv: builds llama-cpp-python from its pinned sdist with the
# patches in native/patches applied, caches that wheel (keyed by sdist hash, patches,
# CMake flags and platform) so a second run takes seconds, then installs the app with
# its pinned dependencies. Idempotent: run it again any time.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
# shellcheck source=native/recipe.env
source native/recipe.env

say() { printf 'build.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# --- system prerequisites, each with the way to get it -----------------------------
PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null 2>&1 ||
  die "no '$PYTHON' found. Install Python 3.11+ (Debian/Ubuntu: sudo apt-get install python3 python3-venv python3-dev; macOS: brew install python@3.12) or set PYTHON=/path/to/python3."
"$PYTHON" - <<'EOF' || die "Python 3.11 or newer is needed (found $("$PYTHON" --version 2>&1)). Set PYTHON=/path/to/python3.11+."
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
EOF
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null ||
  die "Python's venv/ensurepip modules are missing. Debian/Ubuntu: sudo apt-get install python3-venv"
py_include="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
[ -f "$py_include/Python.h" ] ||
  die "Python headers not found ($py_include/Python.h). Debian/Ubuntu: sudo apt-get install python3-dev; Fedora: sudo dnf install python3-devel"
command -v cmake >/dev/null 2>&1 ||
  die "cmake not found (3.21+ needed). Debian/Ubuntu: sudo apt-get install cmake; macOS: brew install cmake; or: pip install cmake"
cxx="${CXX:-$(command -v c++ || command -v g++ || command -v clang++ || true)}"
[ -n "$cxx" ] ||
  die "no C/C++ compiler found. Debian/Ubuntu: sudo apt-get install build-essential; macOS: xcode-select --install"
command -v patch >/dev/null 2>&1 || die "'patch' not found. Debian/Ubuntu: sudo apt-get install patch"
command -v tmux >/dev/null 2>&1 ||
  say "note: tmux not found; gritdesk does not need it, but one test drives the chat under tmux (Debian/Ubuntu: sudo apt-get install tmux; macOS: brew install tmux)"
command -v tesseract >/dev/null 2>&1 ||
  say "note: tesseract not found; gritdesk then skips scanned PDF pages (\"OCR unavailable\") and the OCR test checks that skip instead of reading the page (Debian/Ubuntu: sudo apt-get install tesseract-ocr; macOS: brew install tesseract)"

# --- the virtual environment --------------------------------------------------------
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  "$PYTHON" -m venv "$venv"
fi
vpy="$venv/bin/python"

# --- the patched llama-cpp-python wheel, cached --------------------------------------
cache="${GRITDESK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gritdesk}"
mkdir -p "$cache/sdist" "$cache/wheels"
sdist="$cache/sdist/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz"
sha256() { "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"; }

if [ ! -f "$sdist" ] || [ "$(sha256 "$sdist")" != "$LLAMA_CPP_PYTHON_SDIST_SHA256" ]; then
  say "downloading llama-cpp-python $LLAMA_CPP_PYTHON_VERSION sdist"
  tmp="$(mktemp -d)"
  "$vpy" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
    "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$tmp" ||
    die "could not download llama-cpp-python $LLAMA_CPP_PYTHON_VERSION; put its sdist at $sdist and run again"
  mv "$tmp"/llama_cpp_python-*.tar.gz "$sdist"
  rm -rf "$tmp"
  [ "$(sha256 "$sdist")" = "$LLAMA_CPP_PYTHON_SDIST_SHA256" ] ||
    { rm -f "$sdist"; die "sdist checksum mismatch (expected $LLAMA_CPP_PYTHON_SDIST_SHA256); removed it"; }
fi

cmake_args="$(bash native/cmake-flags.sh)"
key="$(PYTHON="$PYTHON" bash native/wheel-key.sh)"
wheel_dir="$cache/wheels/$key"
wheel="$(ls "$wheel_dir"/llama_cpp_python-*.whl 2>/dev/null | head -n 1 || true)"

if [ -z "$wheel" ]; then
  say "building llama-cpp-python $LLAMA_CPP_PYTHON_VERSION with $(ls native/patches | wc -l | tr -d ' ') patches (several minutes, once)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  tar xzf "$sdist" -C "$work"
  src="$work/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION"
  for p in native/patches/*.patch; do
    patch -p1 -s --forward -d "$src" <"$p" || die "patch $p does not apply to llama-cpp-python $LLAMA_CPP_PYTHON_VERSION"
  done
  jobs="$("$PYTHON" -c 'import os; print(os.cpu_count() or 2)')"
  CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL="$jobs" \
    "$vpy" -m pip wheel -q --disable-pip-version-check --no-deps "$src" -w "$work/out" >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log" >&2; die "llama-cpp-python build failed (log above)"; }
  mkdir -p "$wheel_dir"
  mv "$work"/out/llama_cpp_python-*.whl "$wheel_dir/"
  wheel="$(ls "$wheel_dir"/llama_cpp_python-*.whl | head -n 1)"
  say "cached $wheel"
fi

# --- the app ---------------------------------------------------------------------------
installed_key="$venv/.gritdesk-llama-key"
if [ "$(cat "$installed_key" 2>/dev/null || true)" != "$key" ]; then
  "$vpy" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"
  echo "$key" >"$installed_key"
fi
app_key="$(cat pyproject.toml | "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
if [ "$(cat "$venv/.gritdesk-app-key" 2>/dev/null || true)" != "$app_key" ]; then
  say "installing gritdesk and its pinned dependencies"
  "$vpy" -m pip install -q --disable-pip-version-check -e "$here[dev]"
  echo "$app_key" >"$venv/.gritdesk-app-key"
fi
# --- the load check: a tiny model loads in a child process -------------------------------
# A build that crashes (a CUDA build segfaulting in llama_model::print_info, two C++ runtimes
# mixed) fails here with the signal, the wheel, the likely cause and `ldd` of the ggml
# libraries (app/gritdesk/build_check.py), once per installed wheel.
checked="$venv/.gritdesk-load-checked"
if [ "${GRITDESK_SKIP_LOAD_CHECK:-}" = 1 ]; then
  say "load check skipped (GRITDESK_SKIP_LOAD_CHECK=1)"
elif [ "$(cat "$checked" 2>/dev/null || true)" != "$key" ]; then
  PYTHONPATH="$here/app${PYTHONPATH:+:$PYTHONPATH}" "$vpy" -m gritdesk.build_check --wheel "$wheel" ||
    die "the llama.cpp build installed in $venv cannot load a model (report above); rebuild as it suggests (or remove $wheel_dir), or set GRITDESK_SKIP_LOAD_CHECK=1 to go on without the check"
  echo "$key" >"$checked"
fi
say "ready: $venv/bin/gritdesk"
