#!/usr/bin/env python3
"""fault_proxy.py - an HTTP fault-injecting reverse proxy for the store tests.

Forwards every request to --upstream (e.g. moto) and, by a deterministic
schedule, injects faults instead: a 503 SlowDown answer, a 500, a connection
reset before any answer, or a delay.  Binds 127.0.0.1 on a free port and
prints "port N" first.  Counters at GET /_proxy/stats (JSON).

  --fail-every N   every Nth request answers 503 SlowDown (S3 XML body)
  --reset-every N  every Nth request is dropped (connection closed, no reply)
  --error-every N  every Nth request answers 500 InternalError
  --delay-ms MS    delay every request by MS
  --fail-all       every request answers 503
"""
import argparse
import http.client
import json
import socketserver
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--upstream", required=True)
ap.add_argument("--fail-every", type=int, default=0)
ap.add_argument("--reset-every", type=int, default=0)
ap.add_argument("--error-every", type=int, default=0)
ap.add_argument("--delay-ms", type=int, default=0)
ap.add_argument("--fail-all", action="store_true")
args = ap.parse_args()
up = urllib.parse.urlsplit(args.upstream)
lock = threading.Lock()
stats = {"requests": 0, "slowdown": 0, "reset": 0, "error": 0, "forwarded": 0}

SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
            b'<Message>Please reduce your request rate.</Message></Error>')
INTERNAL = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
            b'<Message>We encountered an internal error.</Message></Error>')


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def fault(self, n):
        if args.fail_all or (args.fail_every and n % args.fail_every == 0):
            stats["slowdown"] += 1
            return "slowdown"
        if args.reset_every and n % args.reset_every == 0:
            stats["reset"] += 1
            return "reset"
        if args.error_every and n % args.error_every == 0:
            stats["error"] += 1
            return "error"
        return None

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/_proxy/stats":
            return self.answer(200, json.dumps(stats).encode())
        with lock:
            stats["requests"] += 1
            what = self.fault(stats["requests"])
        if args.delay_ms:
            time.sleep(args.delay_ms / 1000)
        if what == "slowdown":
            return self.answer(503, SLOWDOWN)
        if what == "error":
            return self.answer(500, INTERNAL)
        if what == "reset":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        conn.request(self.command, self.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        self.send_response(r.status, r.reason)
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()
        with lock:
            stats["forwarded"] += 1

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


srv = Server(("127.0.0.1", 0), Proxy)
print("port", srv.server_address[1], flush=True)
srv.serve_forever()
