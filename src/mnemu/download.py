"""Fetching files with checksums: atomic, resumable by re-running, with errors that say what to do."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import MnemuError

#: Set to a base URL (e.g. a local mirror) to fetch every data file from there instead.
MIRROR_ENV = "MNEMU_DATA_MIRROR"


@dataclass(frozen=True)
class RemoteFile:
    """A file of a data set: where it comes from and how to recognise it.

    ``md5`` and ``sha256`` are published checksums of the file as distributed (a file passes if
    either given one matches). ``gunzip_sha256``, for ``.gz`` files, is the SHA-256 of the
    decompressed content: it recognises copies that were recompressed (Debian's data packages, for
    one) but hold the same bytes.
    """

    name: str
    urls: tuple[str, ...]
    md5: str | None = None
    sha256: str | None = None
    gunzip_sha256: str | None = None

    @property
    def checksum(self) -> str:
        return f"md5 {self.md5}" if self.md5 else f"sha256 {self.sha256}"


def file_digest(path: Path, algorithm: str, gunzip: bool = False) -> str:
    digest = hashlib.new(algorithm)
    opener = gzip.open if gunzip else open
    with opener(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_valid(path: Path, remote: RemoteFile) -> bool:
    """True when ``path`` holds the bytes ``remote`` describes (as distributed or recompressed)."""
    if not path.is_file():
        return False
    for algorithm in ("md5", "sha256"):
        expected = getattr(remote, algorithm)
        if expected and file_digest(path, algorithm) == expected:
            return True
    if remote.gunzip_sha256 is None:
        return False
    try:
        return file_digest(path, "sha256", gunzip=True) == remote.gunzip_sha256
    except (OSError, EOFError, gzip.BadGzipFile):
        return False


def candidate_urls(remote: RemoteFile) -> list[str]:
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        return [mirror.rstrip("/") + "/" + remote.name]
    return list(remote.urls)


def download(remote: RemoteFile, dest: Path, timeout: float = 60.0) -> Path:
    """Download ``remote`` to ``dest`` unless a valid copy is there; verify it; return ``dest``.

    The file is written to a temporary name and renamed only once its checksum matches, so an
    interrupted or corrupted download never leaves a file that looks complete.
    """
    dest = Path(dest)
    if is_valid(dest, remote):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in candidate_urls(remote):
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        tmp = Path(tmp)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                shutil.copyfileobj(response, out, 1 << 20)
            if not is_valid(tmp, remote):
                errors.append(f"{url}: checksum mismatch (expected {remote.checksum})")
                continue
            os.replace(tmp, dest)
            return dest
        except urllib.error.HTTPError as err:
            errors.append(f"{url}: HTTP {err.code} {err.reason}")
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            errors.append(f"{url}: {getattr(err, 'reason', err)}")
        finally:
            tmp.unlink(missing_ok=True)
    raise MnemuError(
        f"could not download {remote.name} ({'; '.join(errors)}); download it by hand to {dest} "
        f"({remote.checksum}) or set {MIRROR_ENV} to a base URL that serves it"
    )
