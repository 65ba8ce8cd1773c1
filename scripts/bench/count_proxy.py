"""A counting HTTP proxy in front of moto for the posture benchmark: every
request is forwarded unchanged to the upstream and counted, so the API calls
a scanner makes are measured the same way for twokey and for Prowler.

    count_proxy.py LISTEN_PORT UPSTREAM_URL COUNT_FILE

The count (total, and per AWS service from the signing scope of the
Authorization header) is written to COUNT_FILE as JSON after each request;
`POST /__reset` sets it to zero. Loopback only.

With COUNT_TRACE=FILE in the environment, one line per request is appended
to FILE: start (ms since the proxy started), duration at the upstream (ms),
status, service and action (from the X-Amz-Target header, the query string
or the form body), so the calls a scan waits on in turn can be read back.

The proxy must not add latency of its own: the answer (status line, headers
and body) goes out in one write on a socket with Nagle's algorithm off, so a
client's delayed ACK never holds the body back.
"""

import http.client
import json
import re
import sys
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

PORT, UPSTREAM, COUNT_FILE = int(sys.argv[1]), urlparse(sys.argv[2]), sys.argv[3]
LOCK = threading.Lock()
COUNTS = {"total": 0, "by_service": {}}
SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
LOCAL = threading.local()
TRACE = os.environ.get("COUNT_TRACE")
T0 = time.monotonic()
ACTION = re.compile(rb"(?:^|&)Action=([A-Za-z0-9]+)")


def save():
    with open(COUNT_FILE, "w") as f:
        json.dump(COUNTS, f)


def action_of(headers, path, body):
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    for text in (path.partition("?")[2].encode(), body or b""):
        m = ACTION.search(text)
        if m:
            return m.group(1).decode()
    return path.partition("?")[0]


def trace(start, took, status, service, action):
    with LOCK:
        with open(TRACE, "a") as f:
            f.write(f"{(start - T0) * 1000:.1f} {took * 1000:.1f} {status} {service} {action}\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def _forward(self):
        if self.path == "/__reset":
            with LOCK:
                COUNTS["total"] = 0
                COUNTS["by_service"] = {}
                save()
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        m = SCOPE.search(self.headers.get("Authorization", ""))
        service = m.group(1) if m else "unsigned"
        with LOCK:
            COUNTS["total"] += 1
            COUNTS["by_service"][service] = COUNTS["by_service"].get(service, 0) + 1
            save()
        conn = getattr(LOCAL, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=300)
            LOCAL.conn = conn
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
        start = time.monotonic()
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (http.client.HTTPException, OSError):
            LOCAL.conn = None
            conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=300)
            LOCAL.conn = conn
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        if TRACE:
            trace(start, time.monotonic() - start, resp.status, service, action_of(self.headers, self.path, body))
        # Status line and headers are buffered until flush_headers; the body
        # joins them so the answer leaves in one write.
        self.send_response_only(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(data)
        self.flush_headers()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward


save()
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
