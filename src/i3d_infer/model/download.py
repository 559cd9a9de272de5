"""Download a file once into the cache, verifying the sha256 prefix its name carries (``...-7c30d5bb.pth``)."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..errors import DownloadError

CHUNK = 1 << 20
HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")


def cache_dir() -> Path:
    """Where downloads live: ``$I3D_INFER_CACHE``, else ``~/.cache/i3d-infer``."""
    return Path(os.environ.get("I3D_INFER_CACHE") or Path.home() / ".cache" / "i3d-infer")


def is_url(path_or_url: str | os.PathLike) -> bool:
    """Whether the argument is an http(s) URL rather than a local path."""
    return str(path_or_url).startswith(("http://", "https://"))


def expected_hash_prefix(filename: str) -> str | None:
    """The sha256 prefix in a file name like ``name_20200814-7c30d5bb.pth``, or None when it has none."""
    match = HASH_IN_NAME.search(filename)
    return match.group(1) if match else None


def cached_path(url: str, directory: Path | None = None) -> Path:
    """The path a URL is (or would be) cached at."""
    name = Path(urllib.parse.urlparse(url).path).name
    return (directory or cache_dir()) / name


def download(url: str, directory: Path | None = None, progress: bool = True, *, timeout: float = 60.0) -> Path:
    """Return the cached copy of ``url``, downloading it first if needed.

    The transfer goes to a temporary file in the cache directory that is renamed into place only after its size
    matches Content-Length and its sha256 starts with the prefix in the file name; otherwise it is deleted.

    Raises:
        DownloadError: no network, an HTTP error, a short transfer or a hash mismatch (one-line message).
    """
    target = cached_path(url, directory)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    by_hand = f"download it by hand and put it at {target} (or set $I3D_INFER_CACHE)"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, os.fdopen(fd, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                digest, received = _copy_with_progress(response, out, total, name=target.name, progress=progress)
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", None) or e
            raise DownloadError(f"cannot download {url}: {reason}; {by_hand}") from e
        if total is not None and received != total:
            raise DownloadError(
                f"download of {url} was cut short: got {received} of {total} bytes; try again or {by_hand}"
            )
        prefix = expected_hash_prefix(target.name)
        if prefix is not None and not digest.startswith(prefix):
            raise DownloadError(
                f"download of {url} is corrupt: sha256 {digest[: len(prefix)]}... does not match {prefix} "
                "from its name; the file was deleted"
            )
        os.replace(tmp, target)
        return target
    finally:
        tmp.unlink(missing_ok=True)


def _copy_with_progress(response, out, total: int | None, *, name: str, progress: bool) -> tuple[str, int]:
    """Copy a response body to ``out`` chunk by chunk, hashing it; returns (sha256 hex, bytes copied).

    A connection that closes early ends the copy; the caller compares the byte count with Content-Length.
    """
    from tqdm import tqdm

    digest = hashlib.sha256()
    received = 0
    with tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=not progress, file=sys.stderr) as bar:
        done = False
        while not done:
            try:
                chunk = response.read(CHUNK)
            except http.client.IncompleteRead as e:
                chunk, done = e.partial, True  # keep what arrived, then stop
            if not chunk:
                break
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    return digest.hexdigest(), received
