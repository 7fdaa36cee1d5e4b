#!/usr/bin/env python3
"""A tiny scripted HTTP(S) server for the C client tests (tests/unit/test_gitlab_client.c).

It is not a GitLab simulator (that is tests/gitlab-sim/): it answers each request from a JSON script, so a test can
say "the first GET of this path gets a 502, the second a 200" or "reset the connection".

Usage: fakehttp.py --port 0 --script FILE [--tls]
Prints one JSON line on stdout once listening: {"port": N, "cert": "/tmp/.../cert.pem" or null}.

Script:
  {"token": "...",                       optional: requests whose PRIVATE-TOKEN differs get GitLab's 401
   "rules": [{"name": "pages",           names the hit counter (default: the path)
              "method": "GET",           optional, default any
              "path": "/api/v4/x",       exact path (no query) ...
              "path_prefix": "/api/v4/", ... or a prefix
              "params": {"page": "2"},   optional: these query parameters must have these values (null = absent)
              "responses": [RESPONSE, ...]}]}   served in order; the last one repeats
RESPONSE: {"status": 200, "headers": {...}, "json": <value> | "body": "text", "delay": seconds,
           "body_bytes": N (a JSON array of about N bytes), "chunked": bool, "echo": bool ({"path": "/..."}),
           "action": "reset" (TCP RST after reading the request) | "close" (close, no answer) | "stall" (sleep
           "stall" seconds, then close)}
In header values and string bodies: $BASE is the server's base URL, $HTTPDATE+N an HTTP date N s from now,
$NOW+N a Unix time N s from now.
Control: GET /_ctl/stats -> {"max_inflight", "inflight", "hits": {name: n}, "requests": [{"method", "path",
"token_ok"}]}; POST /_ctl/reset zeroes the counters.
"""
import argparse
import email.utils
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"inflight": 0, "max_inflight": 0, "hits": {}, "requests": []}
SCRIPT = {"rules": []}
BASE = ""


def subst(s):
    if not isinstance(s, str):
        return s
    s = s.replace("$BASE", BASE)
    s = re.sub(r"\$HTTPDATE\+(\d+)", lambda m: email.utils.formatdate(time.time() + int(m.group(1)), usegmt=True), s)
    s = re.sub(r"\$NOW\+(\d+)", lambda m: str(int(time.time()) + int(m.group(1))), s)
    return s


def subst_json(v):
    if isinstance(v, str):
        return subst(v)
    if isinstance(v, list):
        return [subst_json(x) for x in v]
    if isinstance(v, dict):
        return {k: subst_json(x) for k, x in v.items()}
    return v


def match(rule, method, path, params):
    if rule.get("method") not in (None, "*", method):
        return False
    if "path" in rule and rule["path"] != path:
        return False
    if "path_prefix" in rule and not path.startswith(rule["path_prefix"]):
        return False
    for k, want in (rule.get("params") or {}).items():
        got = params.get(k)
        if want is None and got is not None:
            return False
        if want is not None and (got is None or got[0] != want):
            return False
    return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body written apart

    def log_message(self, fmt, *args):  # quiet: the C test's stderr is checked for secrets
        pass

    def _send(self, status, headers, body, chunked=False):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, subst(str(v)))
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if chunked:
            for i in range(0, len(body), 1024):
                part = body[i:i + 1024]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(body)

    def _control(self, path):
        if path == "/_ctl/stats":
            with LOCK:
                body = json.dumps(STATE).encode()
            self._send(200, {"Content-Type": "application/json"}, body)
            return True
        if path == "/_ctl/reset":
            with LOCK:
                STATE.update({"inflight": 0, "max_inflight": 0, "hits": {}, "requests": []})
            self._send(204, {}, b"")
            return True
        return False

    def _handle(self):
        url = urllib.parse.urlsplit(self.path)
        path, params = url.path, urllib.parse.parse_qs(url.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self._control(path):
            return
        token_ok = "token" not in SCRIPT or self.headers.get("PRIVATE-TOKEN") == SCRIPT["token"]
        rule = next((r for r in SCRIPT["rules"] if match(r, self.command, path, params)), None)
        name = (rule or {}).get("name") or path
        with LOCK:
            STATE["inflight"] += 1
            STATE["max_inflight"] = max(STATE["max_inflight"], STATE["inflight"])
            n = STATE["hits"].get(name, 0)
            STATE["hits"][name] = n + 1
            STATE["requests"].append({"method": self.command, "path": self.path, "token_ok": token_ok})
        try:
            if not token_ok:
                self._send(401, {"Content-Type": "application/json"}, b'{"message":"401 Unauthorized"}')
                return
            if rule is None:
                self._send(404, {"Content-Type": "application/json"}, b'{"error":"404 Not Found"}')
                return
            resps = rule["responses"]
            r = resps[min(n, len(resps) - 1)]
            if r.get("delay"):
                time.sleep(r["delay"])
            action = r.get("action")
            if action == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            if action == "close":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if action == "stall":
                time.sleep(r.get("stall", 5))
                self.close_connection = True
                return
            headers = dict(r.get("headers") or {})
            if r.get("echo"):
                body = json.dumps({"path": self.path, "method": self.command}).encode()
                headers.setdefault("Content-Type", "application/json")
            elif "body_bytes" in r:
                item = "x" * 98
                count = max(1, r["body_bytes"] // (len(item) + 3))
                body = json.dumps([item] * count).encode()
                headers.setdefault("Content-Type", "application/json")
            elif "json" in r:
                body = json.dumps(subst_json(r["json"])).encode()
                headers.setdefault("Content-Type", "application/json")
            else:
                body = subst(r.get("body", "")).encode()
            self._send(r.get("status", 200), headers, body, chunked=r.get("chunked", False))
        finally:
            with LOCK:
                STATE["inflight"] -= 1

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):  # resets and aborted handshakes are expected
        pass


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


def main():
    global SCRIPT, BASE
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--script", required=True)
    ap.add_argument("--tls", action="store_true")
    a = ap.parse_args()
    with open(a.script) as f:
        SCRIPT = json.load(f)
    tmp = tempfile.mkdtemp(prefix="fakehttp-")

    def stop(*_):
        shutil.rmtree(tmp, ignore_errors=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    srv = Server(("127.0.0.1", a.port), Handler)
    cert = None
    if a.tls:
        cert, key = make_cert(tmp)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    port = srv.server_address[1]
    BASE = f"{'https' if a.tls else 'http'}://127.0.0.1:{port}"
    print(json.dumps({"port": port, "cert": cert}), flush=True)
    try:
        srv.serve_forever(poll_interval=0.05)
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
