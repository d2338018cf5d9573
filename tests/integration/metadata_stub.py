#!/usr/bin/env python3
"""metadata_stub.py - a tiny cloud metadata server for tests/integration/s3.sh.

    python3 metadata_stub.py imds|gce|s3fault CREDS_JSON LOG

Listens on 127.0.0.1 (a free port, printed as "port N" on stdout) and serves
the documented credential endpoints:
  imds: PUT /latest/api/token (needs X-aws-ec2-metadata-token-ttl-seconds),
        GET /latest/meta-data/iam/security-credentials/ and .../<role>
        (both need the X-aws-ec2-metadata-token header) -> the IMDS JSON
        {Code, LastUpdated, Type, AccessKeyId, SecretAccessKey, Token, Expiration}
  gce:  GET /computeMetadata/v1/instance/service-accounts/default/token
        (needs Metadata-Flavor: Google) -> {access_token, expires_in, token_type}
  s3fault: any request -> CREDS_JSON's "status" with an S3 <Error> body naming
        "code", for the first "fail_first" requests (all when absent); after
        that 200 with the body "ok" (a fake S3 endpoint for retry tests).
CREDS_JSON holds the keys to serve ({"AccessKeyId", "SecretAccessKey", "Token"} or
{"access_token"}).  Every request is appended to LOG as "METHOD PATH STATUS".
"""
import datetime
import http.server
import json
import sys

MODE, CREDS, LOG = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3]
TOKEN = "stub-imds-session-token"
ROLE = "spotrun-test-role"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body, ctype="text/plain"):
        data = body.encode()
        with open(LOG, "a") as f:
            f.write("%s %s %d\n" % (self.command, self.path, status))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def imds(self):
        if self.command == "PUT" and self.path == "/latest/api/token":
            if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return self.answer(400, "missing ttl")
            return self.answer(200, TOKEN)
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            return self.answer(401, "no token")
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == base:
            return self.answer(200, ROLE + "\n")
        if self.path == base + ROLE:
            exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=6)
            doc = {"Code": "Success", "LastUpdated": "2026-01-01T00:00:00Z", "Type": "AWS-HMAC",
                   "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")}
            doc.update(CREDS)
            return self.answer(200, json.dumps(doc), "application/json")
        return self.answer(404, "not found")

    def gce(self):
        if self.headers.get("Metadata-Flavor") != "Google":
            return self.answer(403, "missing Metadata-Flavor")
        if self.path == "/computeMetadata/v1/instance/service-accounts/default/token":
            doc = {"access_token": CREDS["access_token"], "expires_in": 3599,
                   "token_type": "Bearer"}
            return self.answer(200, json.dumps(doc), "application/json")
        return self.answer(404, "not found")

    served = 0

    def s3fault(self):
        Handler.served += 1
        n = self.headers.get("Content-Length")
        if n:
            self.rfile.read(int(n))
        if Handler.served <= CREDS.get("fail_first", 1 << 30):
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
                    '<Message>stub says no</Message></Error>' % CREDS["code"])
            return self.answer(CREDS["status"], body, "application/xml")
        return self.answer(200, "ok")

    def handle_any(self):
        if MODE == "s3fault":
            return self.s3fault()
        return self.imds() if MODE == "imds" else self.gce()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_any


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("port %d" % srv.server_address[1], flush=True)
srv.serve_forever()
