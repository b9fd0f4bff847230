#!/usr/bin/env python3
"""A loopback HTTP proxy that makes the emulator answer like a distant AWS.

    python3 tests/support/net_proxy.py --upstream http://127.0.0.1:PORT \\
        [--latency-ms 200] [--throttle 0.3] [--error-5xx 0.2] [--reset 0.1]
        [--drop 0.1] [--seed 0] [--port 0] [--no-stdin-watch]

Listens on 127.0.0.1 (port 0 = a free port), prints exactly one stdout line
`READY <port>` once connections are accepted, and runs until SIGTERM/SIGINT or
until its stdin reaches EOF, like moto_harness.py. Point a client's endpoint
at it instead of the emulator: every request is forwarded unchanged (Host
header included, so SigV4 signatures still verify) and its answer is held
`--latency-ms` before it goes back, as a round trip to a far region would.
Python standard library only.

What happens to a request is decided by `Network.plan` from the request
alone. Faults (issue 8), each at its rate (a fraction of all requests):
  --throttle   HTTP 400 `Throttling` (query XML for IAM/STS, or
               `ThrottlingException` for JSON-protocol services; DynamoDB
               also `ProvisionedThroughputExceededException`)
  --error-5xx  HTTP 500 `InternalFailure` or 503 `ServiceUnavailable`
  --reset      the connection is reset (RST) without an answer
  --drop       the request reaches the emulator, which carries it out, and
               then the connection is reset: the answer is lost (issue 18)
A faulted request never reaches the emulator, but for --drop. Which requests fault is a
hash of the request's bytes, its attempt number (the SDKs send
`amz-sdk-request: attempt=N; max=M`) and `--seed`: a run is repeatable and
its pattern is not periodic, yet a retry of the same bytes is a fresh draw
and succeeds eventually, as with real throttling.
"""
import argparse, hashlib, http.client, os, re, signal, socket, struct, sys, threading, time
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

    def digest(self, salt=b""):
        """A stable number for this request (same bytes, same number)."""
        h = hashlib.sha256(salt + f"{self.method} {self.path}\n".encode() + self.body)
        return int.from_bytes(h.digest()[:8], "big")

    def header(self, name):
        return next((v for k, v in self.headers if k.lower() == name), None)

    def attempt(self):
        """The SDK's attempt number of this request, or None if it sent none."""
        m = re.search(r"attempt=(\d+)", self.header("amz-sdk-request") or "")
        return int(m.group(1)) if m else None

    def is_json_protocol(self):
        return (self.header("content-type") or "").startswith("application/x-amz-json")


# What a fault answers instead of the emulator.
THROTTLE, ERROR_5XX, RESET, DROP = "throttle", "5xx", "reset", "drop"
ERROR_500, ERROR_503 = "500", "503"  # a 5xx fault is one of these


@dataclass(frozen=True)
class Plan:
    """What the proxy does with one request."""
    delay_s: float  # how long the answer is held before it is sent back
    fault: str = None  # one of the fault kinds above, or None: forward it


class Network:
    """The knobs, and the pure decision they make for each request."""

    def __init__(self, latency_ms=0, throttle=0.0, error_5xx=0.0, reset=0.0, seed=0, drop=0.0):
        self.latency_s = latency_ms / 1000
        self.rates = [(THROTTLE, throttle), (ERROR_5XX, error_5xx), (RESET, reset), (DROP, drop)]
        self.seed = seed
        self.seen = {}  # digest -> times seen, for clients that send no attempt number
        self.lock = threading.Lock()

    def plan(self, request):
        return Plan(delay_s=self.latency_s, fault=self.fault(request))

    def fault(self, request):
        if not any(rate for _, rate in self.rates):
            return None
        attempt = request.attempt()
        if attempt is None:
            with self.lock:
                key = request.digest()
                attempt = self.seen[key] = self.seen.get(key, 0) + 1
        draw = request.digest(f"{self.seed}/{attempt}/".encode())
        u = (draw >> 1) / 2**63  # uniform in [0, 1); the low bit picks 500 or 503
        for kind, rate in self.rates:
            if u < rate:
                return kind if kind != ERROR_5XX else (ERROR_500 if draw & 1 else ERROR_503)
            u -= rate
        return None

# (status, reason, error code, query-protocol fault type) of each answered fault.
FAULT_ANSWERS = {
    THROTTLE: (400, "Bad Request", "Throttling", "Sender"),
    ERROR_500: (500, "Internal Server Error", "InternalFailure", "Receiver"),
    ERROR_503: (503, "Service Unavailable", "ServiceUnavailable", "Receiver"),
}


def fault_answer(kind, request):
    """(status, reason, headers, body) of a throttling or 5xx answer, in the
    shape of the request's protocol: query XML (IAM, STS) or JSON."""
    status, reason, code, fault_type = FAULT_ANSWERS[kind]
    request_id = f"{request.digest():016x}-fault"
    if request.is_json_protocol():
        dynamodb = (request.header("x-amz-target") or "").startswith("DynamoDB_")
        if kind == THROTTLE:
            # DynamoDB throttles a table as ProvisionedThroughputExceeded, its
            # control plane as ThrottlingException: half of each.
            code = ("ProvisionedThroughputExceededException"
                    if dynamodb and request.digest(b"code") & 1 else "ThrottlingException")
        body = f'{{"__type":"{code}","message":"injected by net_proxy"}}'
        kind_of_json = "application/x-amz-json-1.0" if dynamodb else "application/x-amz-json-1.1"
        headers = [("Content-Type", kind_of_json), ("x-amzn-ErrorType", code),
                   ("x-amzn-RequestId", request_id)]
    else:
        body = (f'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error>'
                f"<Type>{fault_type}</Type><Code>{code}</Code><Message>injected by net_proxy</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    return status, reason, headers, body.encode()


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
            if plan.delay_s:
                time.sleep(plan.delay_s)
            if plan.fault == DROP:
                try:
                    upstream.send(req)  # carried out; the answer never comes back
                except (OSError, http.client.HTTPException):
                    pass
            if plan.fault in (RESET, DROP):
                # SO_LINGER 0: close() sends RST, as a dropped connection does.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            if plan.fault:
                status, reason, headers, body = fault_answer(plan.fault, req)
            else:
                try:
                    status, reason, headers, body = upstream.send(req)
                except (OSError, http.client.HTTPException) as e:
                    status, reason, headers, body = 502, "Bad Gateway", [], f"upstream: {e}".encode()
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
    for flag, what in (("--throttle", "Throttling"), ("--error-5xx", "HTTP 500/503"),
                       ("--reset", "a connection reset"),
                       ("--drop", "a connection reset after the emulator carried it out")):
        ap.add_argument(flag, type=float, default=0.0, metavar="RATE",
                        help=f"answer this fraction of requests (0 to 1) with {what}")
    ap.add_argument("--seed", type=int, default=0, help="another seed, another fault pattern")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--no-stdin-watch", action="store_true", help="do not exit on stdin EOF")
    a = ap.parse_args()
    if a.latency_ms < 0:
        ap.error("--latency-ms must be 0 or more")
    rates = (a.throttle, a.error_5xx, a.reset, a.drop)
    if any(not 0 <= r <= 1 for r in rates) or sum(rates) > 1:
        ap.error("--throttle, --error-5xx, --reset and --drop are fractions from 0 to 1, together at most 1")
    network = Network(a.latency_ms, *rates[:3], seed=a.seed, drop=a.drop)
    server = Server(("127.0.0.1", a.port), handler_for(network, Upstream(a.upstream)))
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
