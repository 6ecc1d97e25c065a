"""Byte sizes as limits and messages state them (MiB, GiB), shared by the parsers, the
worker process that runs them and file selection."""

from __future__ import annotations

MIB = 1024 * 1024


def describe_bytes(size: int) -> str:
    if size >= 1024 * MIB:
        return f"{size / (1024 * MIB):.3g} GiB"
    return f"{size / MIB:.3g} MiB"
