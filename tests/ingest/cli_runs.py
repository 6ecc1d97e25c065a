"""Run the real `gritdesk index` in a subprocess, optionally watched from inside.

The child runs `gritdesk.cli.main` exactly as the `gritdesk` script does, with two
optional hooks set by environment: GRITDESK_TEST_AUDIT (a file that receives every
path the process opens or lists, one per line, for "was this file read?") and
GRITDESK_TEST_RUSAGE (a file that receives the peak RSS of the process and of its
children, in KiB, when it exits).

Ctrl-C is restored in the child: a pytest started in the background by a non-interactive
shell (`cmd &`) inherits SIGINT ignored, Python then installs no KeyboardInterrupt
handler, and the tests that press Ctrl-C on a child would wait for an exit that never
comes. A user at a terminal always has the default disposition.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_CHILD = """
import os, resource, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
audit = os.environ.get("GRITDESK_TEST_AUDIT")
if audit:
    log = open(audit, "w", buffering=1, errors="surrogateescape")
    def hook(event, args):
        if event in ("open", "os.scandir") and args and isinstance(args[0], (str, bytes)):
            log.write(os.fsdecode(args[0]) + "\\n")
    sys.addaudithook(hook)
try:
    from gritdesk.cli import main
    main()
finally:
    usage = os.environ.get("GRITDESK_TEST_RUSAGE")
    if usage:
        with open(usage, "w") as out:
            own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            out.write(f"{own} {children}\\n")
"""


def gritdesk_command(*args: str | os.PathLike) -> list[str]:
    return [sys.executable, "-c", _CHILD, *(os.fspath(a) for a in args)]


def cli_env(data_dir: Path, config: str = "", **extra: str | os.PathLike) -> dict[str, str]:
    """The environment for a child with its own data dir (and config.toml holding `config`)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "config.toml").write_text(config)
    env = dict(os.environ, GRITDESK_DATA_DIR=str(data_dir))
    env.update({key: os.fspath(value) for key, value in extra.items()})
    return env


def run_index(
    model: Path,
    db: Path,
    *paths: str | os.PathLike,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> tuple[dict, subprocess.CompletedProcess[str]]:
    """`gritdesk index PATHS --json`; the report and the finished process."""
    proc = subprocess.run(
        gritdesk_command("index", *paths, "--db", db, "--model", model, "--json", "--no-save-kv"),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1]), proc


def index_texts(model: Path, folder: Path, texts: dict[str, str]) -> Path:
    """Write `texts` (file name -> text) into `folder`/corpus and index them with the real
    `gritdesk index`, keeping each chunk's KV; the database's path."""
    corpus = folder / "corpus"
    corpus.mkdir()
    for name, text in texts.items():
        (corpus / name).write_text(text + "\n")
    db = folder / "index.db"
    proc = subprocess.run(
        gritdesk_command("index", corpus, "--db", db, "--model", model),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return db


def skip_reasons(report: dict) -> dict[str, str]:
    """Skipped files by name (the last path component), with their reasons."""
    return {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
