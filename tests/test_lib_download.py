"""Downloads that survive cuts: resumed with HTTP Range after a cut or stalled connection, retried a
bounded number of times, verified by every published checksum, nothing left behind on failure.
Served by a local HTTP server on 127.0.0.1 whose paths misbehave on purpose."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from pathlib import Path

import pytest

from mnemu import MnemuError
from mnemu.download import MIRROR_ENV, RemoteFile, download, is_valid

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes
HALF = len(PAYLOAD) // 2


class _Misbehaving(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at every path; the path's first word says how it misbehaves:
    good, wrong (other bytes), cut-once (first response stops half-way), always-cut,
    stall-once (first response stalls half-way), no-range (ignores Range; first cut),
    error-500."""

    log: list

    def do_GET(self):
        kind = self.path.strip("/").split("/")[0]
        self.log.append((self.path, self.headers.get("Range")))
        nth = sum(1 for path, _ in self.log if path == self.path)
        data = b"x" * len(PAYLOAD) if kind == "wrong" else PAYLOAD
        if kind == "error-500":
            self.send_error(500, "broken")
            return
        start = 0
        asked = self.headers.get("Range")
        if asked and kind != "no-range":
            start = int(asked.removeprefix("bytes=").rstrip("-"))
        body = data[start:]
        if start:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if kind == "always-cut":
            self.wfile.write(body[:1000])
        elif kind in ("cut-once", "no-range") and nth == 1:
            self.wfile.write(body[:HALF])  # then the connection closes
        elif kind == "stall-once" and nth == 1:
            self.wfile.write(body[:HALF])
            self.wfile.flush()
            time.sleep(1.5)  # longer than the client's timeout
        else:
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """(base URL, request log of (path, Range header))."""
    log: list = []
    handler = type("Handler", (_Misbehaving,), {"log": log})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", log
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def no_mirror(monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)


def remote_for(url: str, data: bytes = PAYLOAD) -> RemoteFile:
    return RemoteFile("file.bin", (url,), md5=hashlib.md5(data).hexdigest(),
                      sha256=hashlib.sha256(data).hexdigest())


def fast(remote, dest, **kwargs):
    return download(remote, dest, **{"timeout": 0.5, "attempts": 3, "backoff": 0.01, **kwargs})


def nothing_left(folder: Path) -> bool:
    return not any(p.name.startswith(".") for p in folder.iterdir())


def test_cut_connection_is_resumed_from_where_it_stopped(server, tmp_path):
    base, log = server
    dest = fast(remote_for(f"{base}/cut-once"), tmp_path / "file.bin")
    assert dest.read_bytes() == PAYLOAD
    assert log == [("/cut-once", None), ("/cut-once", f"bytes={HALF}-")]
    assert nothing_left(tmp_path)


def test_stalled_connection_times_out_and_resumes(server, tmp_path):
    base, log = server
    began = time.perf_counter()
    dest = fast(remote_for(f"{base}/stall-once"), tmp_path / "file.bin", timeout=0.3)
    assert dest.read_bytes() == PAYLOAD
    assert log == [("/stall-once", None), ("/stall-once", f"bytes={HALF}-")]
    assert time.perf_counter() - began < 1.4  # did not wait for the stalled response


def test_server_that_ignores_range_starts_over(server, tmp_path):
    base, log = server
    dest = fast(remote_for(f"{base}/no-range"), tmp_path / "file.bin")
    assert dest.read_bytes() == PAYLOAD  # not the first half twice
    assert len(log) == 2 and log[1][1] == f"bytes={HALF}-"


def test_connection_cut_every_time_gives_up_after_the_tries(server, tmp_path):
    base, log = server
    dest = tmp_path / "file.bin"
    with pytest.raises(MnemuError) as err:
        fast(remote_for(f"{base}/always-cut"), dest, attempts=3)
    message = str(err.value)
    assert "\n" not in message and "could not download file.bin" in message
    assert f"connection closed after 1000 of {len(PAYLOAD) - 2000} bytes (3 tries)" in message
    assert [r for _, r in log] == [None, "bytes=1000-", "bytes=2000-"]  # resumed, bounded
    assert not dest.exists() and nothing_left(tmp_path)


def test_server_errors_are_retried_a_bounded_number_of_times(server, tmp_path):
    base, log = server
    with pytest.raises(MnemuError, match=r"HTTP 500 broken \(4 tries\)"):
        fast(remote_for(f"{base}/error-500"), tmp_path / "file.bin", attempts=4)
    assert len(log) == 4 and nothing_left(tmp_path)


def test_wrong_bytes_are_refused_and_removed_then_the_next_url_is_tried(server, tmp_path):
    base, log = server
    remote = RemoteFile("file.bin", (f"{base}/wrong", f"{base}/good"),
                        sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert fast(remote, tmp_path / "file.bin").read_bytes() == PAYLOAD
    assert [path for path, _ in log] == ["/wrong", "/good"]  # a checksum mismatch is not retried
    assert nothing_left(tmp_path)
    only_wrong = RemoteFile("w.bin", (f"{base}/wrong",), sha256=remote.sha256)
    with pytest.raises(MnemuError, match=rf"checksum mismatch \(expected sha256 {remote.sha256}\)"):
        fast(only_wrong, tmp_path / "w.bin")
    assert not (tmp_path / "w.bin").exists() and nothing_left(tmp_path)


def test_refused_connection_is_not_retried(tmp_path):
    import socket

    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    began = time.perf_counter()
    with pytest.raises(MnemuError, match="could not download"):
        download(remote_for(f"http://127.0.0.1:{port}/x"), tmp_path / "file.bin", backoff=5.0)
    assert time.perf_counter() - began < 2  # no back-off waits


def test_every_given_checksum_must_match(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(PAYLOAD)
    good = remote_for("unused")
    assert is_valid(path, good)
    assert not is_valid(path, RemoteFile("f.bin", (), md5=good.md5, sha256="0" * 64))
    assert not is_valid(path, RemoteFile("f.bin", (), md5="0" * 32, sha256=good.sha256))
    assert is_valid(path, RemoteFile("f.bin", (), sha256=good.sha256))
    path.write_bytes(PAYLOAD[:-1])  # truncated
    assert not is_valid(path, good)
