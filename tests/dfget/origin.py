#!/usr/bin/env python3
"""A tiny HTTP origin with Range support for the dfget interop test.

Serves the files of a directory (GET/HEAD, `Range: bytes=a-b`, `bytes=a-`, `bytes=-n`; one
range per request) and appends one line per request to a log: `<path> <range or -> <bytes sent>`.
Python's SimpleHTTPRequestHandler ignores Range, which hides double fetches: this one does not.
usage: origin.py DIR PORT LOG
"""
import http.server
import os
import re
import sys
import threading

ROOT, PORT, LOG = sys.argv[1], int(sys.argv[2]), sys.argv[3]
LOCK = threading.Lock()
CHUNK = 1 << 20


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def record(self, rng, sent):
        with LOCK, open(LOG, "a") as f:
            f.write(f"{self.path} {rng or '-'} {sent}\n")

    def do_HEAD(self):
        self.serve(head=True)

    def do_GET(self):
        self.serve(head=False)

    def serve(self, head):
        name = os.path.normpath(self.path.split("?", 1)[0]).lstrip("/")
        path = os.path.join(ROOT, name)
        if not name or name.startswith("..") or not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        start, end, status = 0, size - 1, 200
        rng = self.headers.get("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not m or (m.group(1) == "" and m.group(2) == ""):
                self.send_error(416)
                return
            if m.group(1) == "":
                start, end = max(0, size - int(m.group(2))), size - 1
            else:
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            if start >= size or start > end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.record(rng, 0)
                return
            status = 206
        length = end - start + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        self.send_header("Last-Modified", self.date_time_string(int(os.path.getmtime(path))))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        sent = 0
        if not head:
            with open(path, "rb") as f:
                f.seek(start)
                while sent < length:
                    buf = f.read(min(CHUNK, length - sent))
                    if not buf:
                        break
                    self.wfile.write(buf)
                    sent += len(buf)
        self.record(rng, sent)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


Server(("127.0.0.1", PORT), Handler).serve_forever()
