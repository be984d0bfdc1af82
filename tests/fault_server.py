"""A real HTTP server for the files of one folder, with Range support and faults injected on purpose.

Run it as a process (tests use :func:`fault_server`)::

    python tests/fault_server.py --root DIR --port 0 --seed 7 --p-503 0.1 --p-403 0.05 --p-drop 0.1 --p-slow 0.05

It prints its port on the first line of stdout (tests/servers.py starts and stops it). Files are served like an object store's
HTTP endpoint: ``GET`` with one ``Range: bytes=a-b`` answers 206 with ``Content-Range``; ``HEAD``
gives ``Content-Length``, ``ETag`` (from size and mtime, so a rewritten file gets a new one) and
``Accept-Ranges``; ``If-Match`` with another ETag answers 412; a missing file 404 with an S3
``NoSuchKey`` body.

Faults, drawn per request from ``Random(f"{seed}:{path}:{n}")`` (``n`` counts the requests to
that path, so a run is repeatable whatever the threads do): ``503`` with S3's XML ``SlowDown``
body, ``403`` with a CDN's HTML (odd n) or S3's XML (even n) body, ``drop`` (headers with the
full Content-Length, part of the body, then the socket is closed), ``slow`` (``--slow-s`` before
the headers, then the body trickled over another ``--slow-s``). ``--fail-first N`` makes the
first N requests to every path fail with ``--fail-kind`` (exact tests); ``--ignore-range``
answers every GET with 200 and the whole file. ``GET /_stats`` returns JSON: requests per path,
faults per kind, the peak number of requests served at once.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>'
    b"<RequestId>FAULT</RequestId></Error>"
)
FORBIDDEN_HTML = b"<html><head><title>403 Forbidden</title></head><body><h1>403 Forbidden</h1>Request blocked.</body></html>"
FORBIDDEN_XML = b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>'
NO_SUCH_KEY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>'
)
KINDS = ("503", "403", "drop", "slow", "500")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class State:
    """What the server counts, shared by its request threads."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.lock = threading.Lock()
        self.requests: collections.Counter = collections.Counter()
        self.faults: collections.Counter = collections.Counter()
        self.active = self.peak = 0

    def next_request(self, path: str) -> int:
        with self.lock:
            self.requests[path] += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
            return self.requests[path]

    def done(self) -> None:
        with self.lock:
            self.active -= 1

    def fault_for(self, path: str, n: int) -> str | None:
        args = self.args
        if n <= args.fail_first:
            return args.fail_kind
        draw = random.Random(f"{args.seed}:{path}:{n}").random()
        for kind, p in (("503", args.p_503), ("403", args.p_403), ("drop", args.p_drop), ("slow", args.p_slow)):
            if draw < p:
                return kind
            draw -= p
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as object stores and CDNs serve
    state: State

    def log_message(self, format: str, *args: object) -> None:  # quiet: tests read stdout for the port
        pass

    def do_HEAD(self) -> None:
        self.serve(send_body=False)

    def do_GET(self) -> None:
        if self.path == "/_stats":
            with self.state.lock:
                stats = {"requests": dict(self.state.requests), "faults": dict(self.state.faults), "peak": self.state.peak}
            self.reply(200, json.dumps(stats).encode(), "application/json")
            return
        self.serve(send_body=True)

    def reply(self, status: int, body: bytes, content_type: str, send_body: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def serve(self, send_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        n = self.state.next_request(path)
        try:
            fault = self.state.fault_for(path, n)
            if fault is not None:
                with self.state.lock:
                    self.state.faults[fault] += 1
            if fault in ("503", "403", "500"):
                self.error_fault(fault, n, send_body)
                return
            if fault == "drop" and not send_body:  # a HEAD has no body to break: close before answering
                self.close_connection = True
                return
            if fault == "slow":
                time.sleep(self.state.args.slow_s)
            self.serve_file(path, send_body, n, fault)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout): nothing to report
            self.close_connection = True
        finally:
            self.state.done()

    def error_fault(self, fault: str, n: int, send_body: bool) -> None:
        if fault == "503":
            self.reply(503, SLOW_DOWN, "application/xml", send_body)
        elif fault == "500":
            self.reply(500, b"<html><body>Internal Server Error</body></html>", "text/html", send_body)
        elif n % 2:
            self.reply(403, FORBIDDEN_HTML, "text/html", send_body)
        else:
            self.reply(403, FORBIDDEN_XML, "application/xml", send_body)

    def serve_file(self, path: str, send_body: bool, n: int, fault: str | None) -> None:
        file = (Path(self.state.args.root) / path.lstrip("/")).resolve()
        if not file.is_file() or Path(self.state.args.root).resolve() not in file.parents:
            self.reply(404, NO_SUCH_KEY, "application/xml", send_body)
            return
        stat = file.stat()
        size, etag = stat.st_size, f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        if self.headers.get("If-Match") not in (None, "*", etag):
            self.reply(412, b"<Error><Code>PreconditionFailed</Code></Error>", "application/xml", send_body)
            return
        first, last = self.wanted_range(size)
        if first is None:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        partial = (first, last) != (0, size - 1) or (self.headers.get("Range") is not None and not self.state.args.ignore_range)
        self.send_response(206 if partial else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(last - first + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        if partial:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()
        if send_body:
            self.send_body(file, first, last - first + 1, n, fault)

    def wanted_range(self, size: int) -> tuple[int | None, int]:
        header = self.headers.get("Range")
        match = _RANGE.fullmatch(header.strip()) if header else None
        if match is None or self.state.args.ignore_range:
            return 0, size - 1
        if match[1] == "":  # bytes=-N: the last N bytes
            return max(size - int(match[2]), 0), size - 1
        first = int(match[1])
        last = min(int(match[2]), size - 1) if match[2] else size - 1
        return (first, last) if first < size and first <= last else (None, 0)

    def send_body(self, file: Path, first: int, length: int, n: int, fault: str | None) -> None:
        # a drop stops part-way through the body (where, drawn from the request), then closes the
        # socket under the client, which was promised the full Content-Length
        stop = length
        if fault == "drop":
            stop = int(length * random.Random(f"drop:{n}").uniform(0.05, 0.95))
        pieces = 16 if fault == "slow" else 1
        with open(file, "rb") as fh:
            fh.seek(first)
            sent = 0
            while sent < stop:
                piece = fh.read(min(1 << 20, stop - sent, max(1, -(-length // pieces))))
                if not piece:
                    break
                self.wfile.write(piece)
                sent += len(piece)
                if fault == "slow" and sent < stop:  # not after the last piece: the client is done then
                    time.sleep(self.state.args.slow_s / pieces)
        if fault == "drop":
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    for kind in ("503", "403", "drop", "slow"):
        parser.add_argument(f"--p-{kind}", type=float, default=0.0, dest=f"p_{kind}", help=f"probability of a {kind} fault per request")
    parser.add_argument("--slow-s", type=float, default=0.5)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--fail-kind", choices=KINDS, default="503")
    parser.add_argument("--ignore-range", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    handler = type("FaultHandler", (Handler,), {"state": State(args)})
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
