#!/usr/bin/env python3
"""metadata_server.py - one configurable cloud metadata server for the provider tests.

    python3 metadata_server.py --provider aws|gcp|azure|alibaba|oci|ibm [options]

Binds 127.0.0.1 on a free port and prints the port as the first line of stdout.
Serves the provider's documented endpoints with the payload files of
tests/fixtures/metadata/<provider>/ byte for byte:
  static/<url path>   served at that path (a path ending in '/' maps to '_index');
                      query strings are ignored
  --at PATH=FILE@WHEN the payload FILE (relative to the provider folder) replaces
                      PATH's static answer (or its 404) once released: WHEN is seconds
                      after start, or "ctl" for POST /_control/release
  --static PATH=FILE  replaces a static answer from the start
Provider rules, as documented (PROVIDERS.md):
  aws      PUT /latest/api/token needs X-aws-ec2-metadata-token-ttl-seconds 1..21600
           (400), refuses X-Forwarded-For (403); a GET with an unknown or expired token
           gets 401; with --require-token a GET without one gets 401 too
  alibaba  the same with the X-aliyun-ecs-metadata-token headers
  gcp      needs "Metadata-Flavor: Google" (403 otherwise); answers carry it and an
           ETag; ?wait_for_change=true hangs until the value's ETag differs from
           last_etag (or from the value at request time when last_etag is missing:
           logged as NOETAG) or timeout_sec (capped by --max-hang) passes
  azure    needs "Metadata: true" (400); POST /metadata/scheduledevents counts an ack
  oci      needs "Authorization: Bearer Oracle" (401)
  ibm      PUT /identity/v1/token needs "Metadata-Flavor: ibm" and returns token.json;
           GETs need "Authorization: Bearer <that token>" (401)
Knobs: --token-life S (tokens expire after S s whatever the TTL), --fail-503 N
(the first N requests whose path contains --fail-path answer 503), --hang (accept
connections, never answer), --log FILE (CONNECT per connection, then
"METHOD PATH STATUS" per request, "ACK <body>" per acknowledgement).
Control: POST /_control/release[?path=P], POST /_control/expire-tokens,
GET /_control/stats (JSON counters).
"""
import argparse
import hashlib
import http.server
import json
import os
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "metadata")

ap = argparse.ArgumentParser()
ap.add_argument("--provider", required=True,
                choices=["aws", "gcp", "azure", "alibaba", "oci", "ibm"])
ap.add_argument("--fixtures", default=FIXTURES)
ap.add_argument("--at", action="append", default=[])
ap.add_argument("--static", action="append", default=[])
ap.add_argument("--require-token", action="store_true")
ap.add_argument("--token-life", type=float, default=0)
ap.add_argument("--fail-503", type=int, default=0)
ap.add_argument("--fail-path", default="")
ap.add_argument("--max-hang", type=float, default=60)
ap.add_argument("--hang", action="store_true")
ap.add_argument("--log", default=os.devnull)
A = ap.parse_args()
PDIR = os.path.join(A.fixtures, A.provider)

lock = threading.Condition()
stats = {"connections": 0, "requests": 0, "acks": 0, "token_puts": 0, "noetag": 0, "fail503": 0}
tokens = {}          # token -> expiry (monotonic)
released = set()     # paths whose --at payload is live
at = {}              # path -> (file, when)
static_over = {}     # path -> file
forever = threading.Event()


def read(rel):
    with open(os.path.join(PDIR, rel), "rb") as f:
        return f.read()


def log(line):
    with lock:
        with open(A.log, "a") as f:
            f.write(line + "\n")


def release(path=None):
    with lock:
        for p in at:
            if path is None or p == path:
                released.add(p)
        lock.notify_all()


for spec in A.at:
    path, rest = spec.split("=", 1)
    fname, when = rest.rsplit("@", 1)
    at[path] = fname
    if when != "ctl":
        threading.Timer(float(when), release, [path]).start()
for spec in A.static:
    path, fname = spec.split("=", 1)
    static_over[path] = fname


def content(path):
    """The current answer for path: bytes or None (404)."""
    with lock:
        if path in at and path in released:
            return read(at[path])
    if path in static_over:
        return read(static_over[path])
    rel = path.lstrip("/")
    if rel.endswith("/") or rel == "":
        rel += "_index"
    f = os.path.join(PDIR, "static", rel)
    if os.path.isfile(f):
        with open(f, "rb") as fh:
            return fh.read()
    return None


def etag_of(body):
    return hashlib.md5(body or b"").hexdigest()[:16]


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def process_request(self, request, client_address):
        with lock:
            stats["connections"] += 1
        log("CONNECT")
        super().process_request(request, client_address)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body=b"", headers=()):
        if isinstance(body, str):
            body = body.encode()
        log("%s %s %d" % (self.command, self.path, status))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def route(self):
        if A.hang:
            forever.wait()
            return
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        if u.path.startswith("/_control/"):
            return self.control(u.path, q)
        with lock:
            stats["requests"] += 1
            fail = A.fail_503 > 0 and A.fail_path in u.path
            if fail:
                A.fail_503 -= 1
                stats["fail503"] += 1
        if fail:
            return self.answer(503, "Service Unavailable")
        getattr(self, "p_" + A.provider)(u.path, q)

    do_GET = do_PUT = do_POST = do_HEAD = route

    def control(self, path, q):
        if path == "/_control/release":
            release(q.get("path", [None])[0])
            return self.answer(200, "ok")
        if path == "/_control/expire-tokens":
            with lock:
                tokens.clear()
            return self.answer(200, "ok")
        if path == "/_control/stats":
            with lock:
                return self.answer(200, json.dumps(stats))
        return self.answer(404, "no such control")

    def serve(self, path, headers=()):
        data = content(path)
        if data is None:
            return self.answer(404, "<title>404 - Not Found</title>", [("Content-Type", "text/html")])
        headers = list(headers) or [("Content-Type", "text/plain")]
        return self.answer(200, data, headers)

    # ---- token-based IMDS (AWS, Alibaba) ----
    def imds(self, path, ttl_hdr, tok_hdr):
        if path == "/latest/api/token":
            if self.command != "PUT":
                return self.answer(200, "")
            if self.headers.get("X-Forwarded-For"):
                return self.answer(403, "Forbidden")
            try:
                ttl = int(self.headers.get(ttl_hdr, ""))
            except ValueError:
                return self.answer(400, "Bad Request")
            if not 1 <= ttl <= 21600:
                return self.answer(400, "Bad Request")
            life = min(ttl, A.token_life) if A.token_life else ttl
            with lock:
                stats["token_puts"] += 1
                tok = "tok-%d-%d" % (os.getpid(), stats["token_puts"])
                tokens[tok] = time.monotonic() + life
            return self.answer(200, tok, [(ttl_hdr, str(ttl))])
        tok = self.headers.get(tok_hdr)
        with lock:
            ok = tok in tokens and tokens[tok] > time.monotonic()
        if (tok is not None and not ok) or (tok is None and A.require_token):
            return self.answer(401, "Unauthorized")
        return self.serve(path)

    def p_aws(self, path, q):
        return self.imds(path, "X-aws-ec2-metadata-token-ttl-seconds", "X-aws-ec2-metadata-token")

    def p_alibaba(self, path, q):
        return self.imds(path, "X-aliyun-ecs-metadata-token-ttl-seconds", "X-aliyun-ecs-metadata-token")

    # ---- GCP ----
    def p_gcp(self, path, q):
        if self.headers.get("Metadata-Flavor") != "Google":
            return self.answer(403, "Missing Metadata-Flavor:Google header.")
        hdrs = [("Metadata-Flavor", "Google")]
        if q.get("wait_for_change", [""])[0] == "true":
            last = q.get("last_etag", [None])[0]
            if last is None:
                with lock:
                    stats["noetag"] += 1
                log("NOETAG %s" % self.path)
                last = etag_of(content(path))
            limit = min(float(q.get("timeout_sec", ["60"])[0]), A.max_hang)
            end = time.monotonic() + limit
            with lock:
                while etag_of(content(path)) == last and time.monotonic() < end:
                    lock.wait(max(0.0, end - time.monotonic()))
        data = content(path)
        if data is None:
            return self.answer(404, "Not Found", hdrs)
        return self.answer(200, data, hdrs + [("ETag", etag_of(data)),
                                              ("Content-Type", "application/text")])

    # ---- Azure ----
    def p_azure(self, path, q):
        if self.headers.get("Metadata") != "true":
            return self.answer(400, '{"error": "Bad request. Required metadata header not specified"}')
        if "api-version" not in q:
            return self.answer(400, '{"error": "Bad request. api-version was not specified"}')
        if self.command == "POST" and path == "/metadata/scheduledevents":
            body = self.body()
            try:
                reqs = json.loads(body)["StartRequests"]
                assert all(isinstance(r["EventId"], str) for r in reqs)
            except Exception:
                return self.answer(400, "Bad Request")
            with lock:
                stats["acks"] += 1
            log("ACK %s" % body.decode())
            return self.answer(200, "")
        return self.serve(path, [("Content-Type", "application/json")])

    # ---- OCI ----
    def p_oci(self, path, q):
        if self.headers.get("Authorization") != "Bearer Oracle":
            return self.answer(401, "Unauthorized")
        return self.serve(path)

    # ---- IBM ----
    def p_ibm(self, path, q):
        tok = json.loads(read("token.json"))["access_token"]
        if path == "/identity/v1/token":
            if self.command != "PUT" or self.headers.get("Metadata-Flavor") != "ibm" or "version" not in q:
                return self.answer(400, "Bad Request")
            self.body()
            return self.answer(200, read("token.json"), [("Content-Type", "application/json")])
        if self.headers.get("Authorization") != "Bearer " + tok or "version" not in q:
            return self.answer(401, "Unauthorized")
        return self.serve(path, [("Content-Type", "application/json")])


srv = Server(("127.0.0.1", 0), Handler)
print(srv.server_address[1], flush=True)
try:
    srv.serve_forever()
except KeyboardInterrupt:
    pass
