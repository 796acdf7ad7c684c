"""A loopback HTTP proxy in front of an S3 endpoint that adds a round-trip delay to every request
and counts them: moto answers in ~1-3 ms where real S3 takes 10-30 ms, so the benchmark injects
the difference, and the count (every client's: the engine's own calls and Lance's) is what a user
would pay for. Requests are buffered whole, which is fine at benchmark sizes."""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te", "trailer"}


class DelayProxy:
    """``with DelayProxy(upstream) as proxy``: ``proxy.url`` forwards to ``upstream`` after
    ``proxy.delay`` seconds (settable at any time); ``proxy.count()`` is how many it forwarded."""

    def __init__(self, upstream: str, delay: float = 0.0) -> None:
        self.delay = delay
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        target = urlsplit(upstream)
        host, port, proxy = target.hostname or "127.0.0.1", target.port or 80, self
        local = threading.local()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                        out += self.rfile.read(size)
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self) -> None:
                body = self._body()
                with proxy._lock:
                    proxy.counts[self.command] += 1
                if proxy.delay:
                    time.sleep(proxy.delay)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                headers["Content-Length"] = str(len(body))
                # moto checks no signature: the one made for the proxy's host name passes
                headers = {k: v for k, v in headers.items() if k.lower() != "host"} | {"Host": f"{host}:{port}"}
                for attempt in (0, 1):  # a kept-alive upstream connection may have closed
                    conn = getattr(local, "conn", None) or http.client.HTTPConnection(host, port, timeout=120)
                    local.conn = conn
                    try:
                        conn.request(self.command, self.path, body=body, headers=headers)
                        reply = conn.getresponse()
                        data = reply.read()
                        break
                    except (http.client.HTTPException, OSError):
                        conn.close()
                        local.conn = None
                        if attempt:
                            raise
                self.send_response(reply.status, reply.reason)
                head = self.command == "HEAD"  # its Content-Length is the object's: passed on
                for k, v in reply.getheaders():
                    if k.lower() not in HOP and (head or k.lower() != "content-length"):
                        self.send_header(k, v)
                if not head:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if not head:
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def count(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
