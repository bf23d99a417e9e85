#!/usr/bin/env python3
"""A stand-in for the `hawker` binary, used ONLY to prove the DSR lab itself
(`bash tests/dsr_lab.sh --hawker tests/dsr/standin_hawker.py`) while the real binary is not built.
It is a test double, not a server: threads, no io_uring, no limits worth the name.

It mimics the documented CLI and wire behaviour of `hawker serve` / `hawker import`:
  import --data-dir DIR [--url URL] FILE    copies FILE into DIR/tasks/<id>, prints <id>
  serve --data-dir DIR --vortex-listen A:P --http-listen A:P [--cores L] [--advertise-addr IP]
        [--tcp-max-segment BYTES] [--drain-timeout-ms MS]
HTTP: GET /healthz (200 serving / 503 draining), GET /tasks/{id}/pieces/{n} with
X-Hawker-Piece-Digest: crc32:<decimal>, GET /tasks/{id} with Range, GET /metrics.
Vortex: the 74-byte DownloadPiece request answered by PieceContent (tag 1) or Error (tag 255).
Listeners use IP_FREEBIND; SIGTERM drains (in-flight responses finish, or the deadline) and exits 0.
"""
import argparse
import hashlib
import os
import re
import shutil
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dsrclient import piece_length  # noqa: E402

IP_FREEBIND = 15
STATE = {"draining": False, "inflight": 0, "served_http": 0, "served_vortex": 0}
LOCK = threading.Lock()
DATA_DIR = "."
MSS = 0


def task_path(tid):
    if not re.fullmatch(r"[0-9a-f]{64}", tid):
        return None
    p = os.path.join(DATA_DIR, "tasks", tid)
    return p if os.path.isfile(p) else None


def read_piece(tid, n):
    p = task_path(tid)
    if p is None:
        return None
    size = os.path.getsize(p)
    plen = piece_length(size)
    off = n * plen
    if n < 0 or off >= size:
        return None
    with open(p, "rb") as f:
        f.seek(off)
        return off, f.read(min(plen, size - off))


class Inflight:
    def __enter__(self):
        with LOCK:
            STATE["inflight"] += 1

    def __exit__(self, *exc):
        with LOCK:
            STATE["inflight"] -= 1


def freebind_bind(sock, addr):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
    if MSS:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, MSS)
    sock.bind(addr)


class Http(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_body(self, code, body, headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            if STATE["draining"]:
                return self.send_body(503, b"draining")
            return self.send_body(200, b"serving")
        if path == "/metrics":
            body = "".join(f"hawker_standin_{k} {v}\n" for k, v in STATE.items() if k != "draining")
            return self.send_body(200, body.encode())
        m = re.fullmatch(r"/tasks/([0-9a-f]{64})/pieces/(\d+)", path)
        if m:
            with Inflight():
                got = read_piece(m.group(1), int(m.group(2)))
                if got is None:
                    return self.send_body(404, b"no such piece")
                _, data = got
                self.send_body(200, data, [("X-Hawker-Piece-Digest", f"crc32:{zlib.crc32(data)}")])
                with LOCK:
                    STATE["served_http"] += 1
            return None
        m = re.fullmatch(r"/tasks/([0-9a-f]{64})", path)
        if m:
            p = task_path(m.group(1))
            if p is None:
                return self.send_body(404, b"no such task")
            size = os.path.getsize(p)
            start, end = 0, size - 1
            rng = self.headers.get("Range")
            code = 200
            if rng:
                r = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
                if not r or int(r.group(1)) >= size:
                    return self.send_body(416, b"", [("Content-Range", f"bytes */{size}")])
                start = int(r.group(1))
                end = min(size - 1, int(r.group(2))) if r.group(2) else size - 1
                code = 206
            with Inflight(), open(p, "rb") as f:
                f.seek(start)
                data = f.read(end - start + 1)
                hdrs = [("Content-Range", f"bytes {start}-{end}/{size}")] if code == 206 else []
                return self.send_body(code, data, hdrs)
        return self.send_body(404, b"not found")


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        freebind_bind(self.socket, self.server_address)


class Vortex(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        s.settimeout(30)
        while True:
            try:
                hdr = self._exact(6)
            except (ConnectionError, OSError):
                return
            pid, tag, vlen = struct.unpack(">BBI", hdr)
            if tag != 0 or vlen != 68:
                return self._error(pid, 1, f"bad request tag {tag} length {vlen}")
            value = self._exact(68)
            tid = value[:64].decode("ascii", "replace")
            (n,) = struct.unpack(">I", value[64:])
            with Inflight():
                got = read_piece(tid, n)
                if got is None:
                    self._error(pid, 2, "piece not found")
                    continue
                off, data = got
                dig = f"crc32:{zlib.crc32(data)}".encode()
                meta = (struct.pack(">IQQI", n, off, len(data), len(dig)) + dig +
                        struct.pack(">I", 0) + struct.pack(">BQq", 1, 0, int(time.time())))
                s.sendall(struct.pack(">BBI", pid, 1, 4 + len(meta)) + struct.pack(">I", len(meta)) + meta)
                s.sendall(data)
                with LOCK:
                    STATE["served_vortex"] += 1

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            part = self.request.recv(n - len(buf))
            if not part:
                raise ConnectionError("closed")
            buf += part
        return buf

    def _error(self, pid, code, msg):
        v = bytes([code]) + msg.encode()
        self.request.sendall(struct.pack(">BBI", pid, 255, len(v)) + v)


class VortexServer(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def server_bind(self):
        freebind_bind(self.socket, self.server_address)


def hostport(s):
    h, _, p = s.rpartition(":")
    return h, int(p)


def serve(a):
    global DATA_DIR, MSS
    DATA_DIR = a.data_dir
    MSS = a.tcp_max_segment or 0
    servers = [HttpServer(hostport(a.http_listen), Http), VortexServer(hostport(a.vortex_listen), Vortex)]
    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"standin serving http={a.http_listen} vortex={a.vortex_listen} mss={MSS}", flush=True)
    # Poll: the OS may deliver SIGTERM to a server thread, and then a blocking wait in the main
    # thread would never be interrupted to run the handler.
    while not stop.wait(0.1):
        pass
    STATE["draining"] = True
    deadline = time.monotonic() + a.drain_timeout_ms / 1000
    print("standin draining", flush=True)
    while time.monotonic() < deadline:
        time.sleep(0.05)
        with LOCK:
            if STATE["inflight"] == 0:
                break
    print(f"standin drained inflight={STATE['inflight']}", flush=True)
    return 0


def do_import(a):
    url = a.url or "file://" + os.path.abspath(a.file)
    tid = hashlib.sha256((url + "STANDARD").encode()).hexdigest()
    os.makedirs(os.path.join(a.data_dir, "tasks"), exist_ok=True)
    shutil.copyfile(a.file, os.path.join(a.data_dir, "tasks", tid))
    print(tid)
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--data-dir", required=True)
    s.add_argument("--vortex-listen", required=True)
    s.add_argument("--http-listen", required=True)
    s.add_argument("--cores")
    s.add_argument("--advertise-addr")
    s.add_argument("--tcp-max-segment", type=int)
    s.add_argument("--drain-timeout-ms", type=int, default=30000)
    i = sub.add_parser("import")
    i.add_argument("--data-dir", required=True)
    i.add_argument("--url")
    i.add_argument("file")
    a = ap.parse_args()
    return serve(a) if a.cmd == "serve" else do_import(a)


if __name__ == "__main__":
    sys.exit(main())
