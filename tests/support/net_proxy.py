#!/usr/bin/env python3
"""A loopback HTTP proxy that makes the emulator answer like a distant AWS.

    python3 tests/support/net_proxy.py --upstream http://127.0.0.1:PORT \\
        [--latency-ms 200] [--port 0] [--no-stdin-watch]

Listens on 127.0.0.1 (port 0 = a free port), prints exactly one stdout line
`READY <port>` once connections are accepted, and runs until SIGTERM/SIGINT or
until its stdin reaches EOF, like moto_harness.py. Point a client's endpoint
at it instead of the emulator: every request is forwarded unchanged (Host
header included, so SigV4 signatures still verify) and its answer is held
`--latency-ms` before it goes back, as a round trip to a far region would.
Python standard library only.

What happens to a request is decided by `Network.plan` from the request
alone. Faults (issue 8: throttling, 5xx, connection resets at a given rate)
belong there: pick them by a hash of the request (`Request.digest`), so a
run is repeatable and its pattern is not periodic, and add their kinds to
`Plan`. The handler already carries a plan out step by step.
"""
import argparse, hashlib, http.client, os, signal, sys, threading, time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Headers that describe one hop, not the request: never forwarded.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
              "transfer-encoding", "upgrade"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: list  # [(name, value)] as received, order kept
    body: bytes

    def digest(self):
        """A stable number for this request (same bytes, same number)."""
        h = hashlib.sha256(f"{self.method} {self.path}\n".encode() + self.body)
        return int.from_bytes(h.digest()[:8], "big")


@dataclass(frozen=True)
class Plan:
    """What the proxy does with one request."""
    delay_s: float  # how long the answer is held before it is sent back


class Network:
    """The knobs, and the pure decision they make for each request."""

    def __init__(self, latency_ms=0):
        self.latency_s = latency_ms / 1000

    def plan(self, request):
        return Plan(delay_s=self.latency_s)


class Upstream:
    """One keep-alive connection to the emulator per proxy thread."""

    def __init__(self, url):
        u = urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.local = threading.local()

    def send(self, req):
        """Forwards `req`; returns (status, reason, headers, body)."""
        for attempt in (1, 2):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
            try:
                conn.putrequest(req.method, req.path, skip_host=True, skip_accept_encoding=True)
                for name, value in req.headers:
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        conn.putheader(name, value)
                conn.putheader("Content-Length", str(len(req.body)))
                conn.endheaders(req.body)
                resp = conn.getresponse()
                body = resp.read()
                if resp.will_close:
                    conn.close()
                    self.local.conn = None
                return resp.status, resp.reason, resp.getheaders(), body
            except (ConnectionError, http.client.HTTPException):
                # The emulator closed an idle connection: one fresh try.
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise


def handler_for(network, upstream):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs expect

        def do_any(self):
            req = Request(self.command, self.path, list(self.headers.items()), self._body())
            plan = network.plan(req)
            try:
                status, reason, headers, body = upstream.send(req)
            except (OSError, http.client.HTTPException) as e:
                status, reason, headers, body = 502, "Bad Gateway", [], f"upstream: {e}".encode()
            if plan.delay_s:
                time.sleep(plan.delay_s)
            self.send_response_only(status, reason)
            for name, value in headers:
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_any

        def _body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    chunk = self.rfile.read(size)
                    self.rfile.readline()  # CRLF after the chunk
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(chunks)
                    chunks.append(chunk)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def log_message(self, *args):
            pass

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # Hundreds of connections open at once at high --concurrency: a short
    # accept queue would drop SYNs and add seconds of retransmission.
    request_queue_size = 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True, help="the emulator, http://127.0.0.1:PORT")
    ap.add_argument("--latency-ms", type=float, default=0, help="hold every answer this long")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--no-stdin-watch", action="store_true", help="do not exit on stdin EOF")
    a = ap.parse_args()
    if a.latency_ms < 0:
        ap.error("--latency-ms must be 0 or more")
    server = Server(("127.0.0.1", a.port), handler_for(Network(a.latency_ms), Upstream(a.upstream)))
    if not a.no_stdin_watch and sys.stdin is not None:
        def watch():
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: os._exit(0))
    print(f"READY {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
