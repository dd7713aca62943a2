"""Fetching files with checksums: verified before use, retried and resumed after a cut connection,
written atomically, with errors that say what to do."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import time
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

    ``md5`` and ``sha256`` are published checksums of the file as distributed: a file passes when
    every one given matches. ``gunzip_sha256``, for ``.gz`` files, is the SHA-256 of the
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
        given = [f"{a} {getattr(self, a)}" for a in ("md5", "sha256") if getattr(self, a)]
        return " and ".join(given) or f"gunzipped sha256 {self.gunzip_sha256}"


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
    given = {a: getattr(remote, a) for a in ("md5", "sha256") if getattr(remote, a)}
    if given and all(file_digest(path, a) == expected for a, expected in given.items()):
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


#: Failures worth another try: a stalled or cut connection (a refused one or a 404 would recur).
_TRANSIENT = (TimeoutError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
              http.client.HTTPException)


class _Cut(Exception):
    """A transfer that ended early or stalled: worth another try from where it stopped."""


def _fetch_once(url: str, part: Path, timeout: float) -> None:
    """Append the rest of ``url`` to ``part`` (an HTTP Range request when part holds bytes)."""
    have = part.stat().st_size
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = response.status == 206
            length = response.headers.get("Content-Length")
            received = 0
            # a server that ignores Range sends the whole file again (200): start over
            with open(part, "ab" if resumed else "wb") as out:
                # read1 returns what has arrived, so a stall loses none of it
                for block in iter(lambda: response.read1(1 << 20), b""):
                    out.write(block)
                    received += len(block)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to send: the file is whole (checksum decides)
            return
        if err.code in (408, 429) or err.code >= 500:
            raise _Cut(f"HTTP {err.code} {err.reason}") from err
        raise
    except _TRANSIENT as err:
        raise _Cut(str(err) or type(err).__name__) from err
    except urllib.error.URLError as err:
        if isinstance(err.reason, _TRANSIENT):
            raise _Cut(str(err.reason)) from err
        raise
    if length is not None and received < int(length):
        raise _Cut(f"connection closed after {received} of {length} bytes")


def download(remote: RemoteFile, dest: Path, timeout: float = 60.0, attempts: int = 4,
             backoff: float = 2.0) -> Path:
    """Download ``remote`` to ``dest`` unless a valid copy is there; verify it; return ``dest``.

    Each URL is tried up to ``attempts`` times; after a cut or stalled connection (``timeout``
    seconds without data) the next try resumes where it stopped, waiting ``backoff * 2**k``
    seconds first. The file is written to a temporary name and renamed only once its checksum
    matches, so an interrupted or corrupted download never leaves a file that looks complete.
    """
    dest = Path(dest)
    if is_valid(dest, remote):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in candidate_urls(remote):
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        os.close(fd)
        part = Path(tmp)
        try:
            for attempt in range(attempts):
                try:
                    _fetch_once(url, part, timeout)
                    break
                except _Cut:
                    if attempt == attempts - 1:
                        raise
                    time.sleep(backoff * 2**attempt)
            if not is_valid(part, remote):
                errors.append(f"{url}: checksum mismatch (expected {remote.checksum})")
                continue
            os.replace(part, dest)
            return dest
        except _Cut as cut:
            errors.append(f"{url}: {cut} ({attempts} tries)")
        except urllib.error.HTTPError as err:
            errors.append(f"{url}: HTTP {err.code} {err.reason}")
        except (urllib.error.URLError, OSError) as err:
            errors.append(f"{url}: {getattr(err, 'reason', err)}")
        finally:
            part.unlink(missing_ok=True)
    raise MnemuError(
        f"could not download {remote.name} ({'; '.join(errors)}); download it by hand to {dest} "
        f"({remote.checksum}) or set {MIRROR_ENV} to a base URL that serves it"
    )


def extract_once(archive: Path, into: Path, marker: str) -> Path:
    """Extract a tar archive into ``into`` once; ``into/marker`` exists only after it finished."""
    if (into / marker).exists():
        return into
    into.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=into.parent, prefix=f".{into.name}."))
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
    if into.exists():
        shutil.rmtree(into)
    os.replace(tmp, into)
    return into
