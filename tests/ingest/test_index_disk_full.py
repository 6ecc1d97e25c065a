"""A full disk stops `gritdesk index` with a plain message, keeps what was stored, and the
same command finishes once there is room again.

The database and the KV caches live on a real small file system: a tmpfs mounted in a
private mount namespace (`unshare`, as root or in a user namespace), filled on purpose.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ingest.cli_runs import gritdesk_command

MARKERS = 40
SCRIPT = """
set -u
mount -t tmpfs -o size=32m tmpfs "$SMALL"
dd if=/dev/zero of="$SMALL/filler" bs=1k count=31800 status=none
run() { "$@" index "$CORPUS" --db "$SMALL/index.db" --model "$MODEL" --yes; }
run "$@" > "$OUT/first.out" 2> "$OUT/first.err"; echo $? > "$OUT/first.rc"
"$PY" -c "$CHECK" "$SMALL/index.db" "$MARKERS" > "$OUT/after_full.json"
rm "$SMALL/filler"
run "$@" > "$OUT/second.out" 2> "$OUT/second.err"; echo $? > "$OUT/second.rc"
"$PY" -c "$CHECK" "$SMALL/index.db" "$MARKERS" > "$OUT/after_room.json"
"""
CHECK = """
import json, sys, apsw
db = apsw.Connection(sys.argv[1])
(ok,) = db.execute("PRAGMA integrity_check").fetchone()
texts = " ".join(t for (t,) in db.execute("SELECT text FROM chunks"))
found = sorted(m for m in range(int(sys.argv[2])) if f"marker{m:03}zq" in texts)
print(json.dumps({"integrity": ok, "found": found}))
"""


def write_corpus(folder: Path) -> None:
    folder.mkdir()
    words = "harbour grain lamp fog ledger quarry river stone paper window".split()
    for i in range(MARKERS):
        lines = [f"marker{i:03}zq"] + [
            " ".join(
                f"{words[(i + j + n) % len(words)]}{(i * 31 + j * 7 + n) % 997}" for n in range(12)
            )
            for j in range(12)
        ]
        (folder / f"f{i:03}.txt").write_text("\n".join(lines))


def test_full_disk_stops_cleanly_and_the_same_command_finishes(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    assert shutil.which("unshare") and shutil.which("mount"), "util-linux is needed"
    small, out, corpus = tmp_path / "small", tmp_path / "out", tmp_path / "corpus"
    small.mkdir()
    out.mkdir()
    write_corpus(corpus)
    env = dict(
        os.environ,
        SMALL=str(small),
        OUT=str(out),
        CORPUS=str(corpus),
        MODEL=str(tiny_model_path),
        PY=sys.executable,
        CHECK=CHECK,
        MARKERS=str(MARKERS),
        GRITDESK_CACHE_DIR=str(small / "cache"),  # the KV caches share the small disk
        GRITDESK_DATA_DIR=str(tmp_path / "data"),
    )
    as_root = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "-rm"]
    proc = subprocess.run(
        [*as_root, "sh", "-c", SCRIPT, "sh", *gritdesk_command()],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    first_err = (out / "first.err").read_text()
    assert (out / "first.rc").read_text().strip() == "2", first_err
    assert "Traceback" not in first_err
    assert f"the disk holding the index database {small / 'index.db'} is full" in first_err
    assert "indexed before it are kept" in first_err and "run the same command again" in first_err
    after_full = json.loads((out / "after_full.json").read_text())
    assert after_full["integrity"] == "ok"
    assert len(after_full["found"]) < MARKERS  # it really stopped part way

    second_err = (out / "second.err").read_text()
    assert (out / "second.rc").read_text().strip() == "0", second_err
    after_room = json.loads((out / "after_room.json").read_text())
    assert after_room == {"integrity": "ok", "found": list(range(MARKERS))}
