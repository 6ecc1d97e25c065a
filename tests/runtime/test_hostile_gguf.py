"""A GGUF header that declares more than the file holds is refused before any allocation.

Each file is a few dozen bytes claiming a 2^62-item array, a 2^62-byte string or 2^40
tensors. The CLI runs in a child limited to 2 GiB of address space, so a reader that
believes the header fails the test (MemoryError, a traceback) instead of eating the machine.
"""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
from pathlib import Path

import pytest

GRITDESK = [sys.executable, "-c", "from gritdesk.cli import main; main()"]
ADDRESS_SPACE = 2 * 2**30


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run_limited(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GRITDESK, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        preexec_fn=_limit_memory,
    )


def gguf_string(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def header(n_tensors: int, n_kv: int) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv)


def huge_array() -> bytes:
    """The 49-byte file of the issue: one key whose u8 array declares 2^62 items."""
    return header(0, 1) + gguf_string(b"a") + struct.pack("<IIQ", 9, 0, 1 << 62)


def huge_string_array() -> bytes:
    """An array of 2^40 strings (each at least 8 bytes) in a file of 60 bytes."""
    return header(0, 1) + gguf_string(b"tokens") + struct.pack("<IIQ", 9, 8, 1 << 40)


def huge_string() -> bytes:
    """A string value declaring 2^62 bytes."""
    return header(0, 1) + gguf_string(b"general.name") + struct.pack("<IQ", 8, 1 << 62)


def huge_key() -> bytes:
    return header(0, 1) + struct.pack("<Q", 1 << 62) + b"k"


def huge_tensor_count() -> bytes:
    return header(1 << 40, 1) + gguf_string(b"general.architecture") + struct.pack(
        "<I", 8
    ) + gguf_string(b"llama")


def huge_tensor() -> bytes:
    """One f32 tensor of 2^31 x 2^31 elements whose data would be far past the end."""
    info = gguf_string(b"w") + struct.pack("<I", 2) + struct.pack("<QQ", 1 << 31, 1 << 31)
    return header(1, 0) + info + struct.pack("<IQ", 0, 0) + bytes(64)


HOSTILE = {
    "huge_array": huge_array,
    "huge_string_array": huge_string_array,
    "huge_string": huge_string,
    "huge_key": huge_key,
    "huge_tensor_count": huge_tensor_count,
    "huge_tensor": huge_tensor,
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_declared_sizes_beyond_the_file_are_refused(tmp_path: Path, kind: str) -> None:
    bad = tmp_path / f"{kind}.gguf"
    bad.write_bytes(HOSTILE[kind]())
    proc = run_limited("embed", "--model", str(bad), "hi")
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr, proc.stderr
    assert str(bad) in proc.stderr
    assert "corrupt or truncated" in proc.stderr or "truncated: tensor" in proc.stderr


def test_the_issue_file_is_49_bytes() -> None:
    assert len(huge_array()) == 49


def test_a_good_model_still_embeds_under_the_same_memory_limit(tiny_model_path: Path) -> None:
    """The limit is not what makes the hostile files fail."""
    proc = run_limited("embed", "--model", str(tiny_model_path), "hi")
    assert proc.returncode == 0, proc.stderr
