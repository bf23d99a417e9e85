#!/usr/bin/env python3
"""Piece clients for the DSR lab (tests/dsr_lab.sh): fetch hawker pieces over HTTP and Vortex and
verify every byte against the local source file.

Subcommands (each prints one JSON line and exits 0 only if every byte and digest was right):
  piece   --proto http|vortex --host IP --port P --task ID --file F --piece N [--rate-bps B]
          [--rcvbuf-bytes B] [--timeout-s S]
  verify  --file F --piece N --body PATH [--digest HEADER]   (checks a body fetched by curl)
  pieces  --file F                                            (prints piece count and digests)
  load    --host IP --http-port P --vortex-port P --task ID=FILE ... --connections C
          --requests R --deadline-s S                         (bounded concurrent load)

Numbers: piece length follows Dragonfly (next_power_of_two(len / 500) clamped to 4..64 MiB);
a Vortex header value is bounded by max_vortex_value_bytes (64 KiB) and content by
max_piece_bytes (64 MiB) before any buffer is sized; every socket has a timeout.
"""
import argparse
import json
import os
import socket
import struct
import sys
import threading
import time
import zlib
import random

MIB = 1 << 20
max_vortex_value_bytes = 64 * 1024
max_piece_bytes = 64 * MIB
max_http_header_bytes = 64 * 1024


def piece_length(content_length):
    if content_length <= 0:
        return 4 * MIB
    n = max(1, content_length // 500)
    p = 1 << (n - 1).bit_length()
    return min(max(p, 4 * MIB), 64 * MIB)


def piece_bytes(path, n):
    size = os.path.getsize(path)
    p = piece_length(size)
    off = n * p
    if n < 0 or off >= size:
        raise ValueError(f"piece {n} out of range for {path} ({size} bytes)")
    with open(path, "rb") as f:
        f.seek(off)
        return off, f.read(min(p, size - off))


def piece_count(path):
    size = os.path.getsize(path)
    p = piece_length(size)
    return (size + p - 1) // p


def digest(data):
    return f"crc32:{zlib.crc32(data) & 0xFFFFFFFF}"


def recv_exact(sock, n, rate_bps=0, chunk=64 * 1024):
    """Read exactly n bytes; with rate_bps, pace the reads to about that rate."""
    buf = bytearray()
    start = time.monotonic()
    while len(buf) < n:
        part = sock.recv(min(chunk, n - len(buf)))
        if not part:
            raise ConnectionError(f"peer closed after {len(buf)} of {n} bytes")
        buf += part
        if rate_bps:
            ahead = len(buf) / rate_bps - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    return bytes(buf)


def connect(host, port, timeout_s, rcvbuf_bytes=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf_bytes:
        # Small receive window so the server really has the piece in flight while we read slowly.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
    s.settimeout(timeout_s)
    s.connect((host, port))
    return s


def vortex_get(sock, task, n, rate_bps=0):
    """One Vortex DownloadPiece on an open connection -> (header digest, offset, content)."""
    tid = task.encode("ascii")
    if len(tid) != 64:
        raise ValueError("task id must be 64 ASCII characters")
    req = struct.pack(">BBI", random.randrange(256), 0, 68) + tid + struct.pack(">I", n)
    sock.sendall(req)
    _pid, tag, vlen = struct.unpack(">BBI", recv_exact(sock, 6))
    if vlen > max_vortex_value_bytes:
        raise ValueError(f"vortex value_length {vlen} > {max_vortex_value_bytes}")
    value = recv_exact(sock, vlen)
    if tag == 255:
        code = value[0] if value else -1
        raise RuntimeError(f"vortex error code {code}: {value[1:].decode('utf-8', 'replace')}")
    if tag != 1:
        raise ValueError(f"unexpected vortex tag {tag}")
    if len(value) < 4 + 45:
        raise ValueError("vortex metadata too short")
    (mlen,) = struct.unpack_from(">I", value, 0)
    if mlen != vlen - 4:
        raise ValueError(f"metadata_length {mlen} != value_length-4 {vlen - 4}")
    number, offset, length, dlen = struct.unpack_from(">IQQI", value, 4)
    pos = 4 + 24
    if pos + dlen + 4 > len(value):
        raise ValueError("vortex digest length out of bounds")
    dig = value[pos:pos + dlen].decode("utf-8", "replace")
    if number != n:
        raise ValueError(f"asked piece {n}, got {number}")
    if length > max_piece_bytes:
        raise ValueError(f"piece length {length} > {max_piece_bytes}")
    content = recv_exact(sock, length, rate_bps)
    return dig, offset, content


def http_get(sock, host, path, rate_bps=0, extra_headers=""):
    """One HTTP/1.1 GET on an open connection -> (status, headers dict, body)."""
    req = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra_headers}\r\n"
    sock.sendall(req.encode("ascii"))
    head = bytearray()
    while b"\r\n\r\n" not in head:
        part = sock.recv(4096)
        if not part:
            raise ConnectionError("peer closed during headers")
        head += part
        if len(head) > max_http_header_bytes:
            raise ValueError("response headers too large")
    raw, rest = bytes(head).split(b"\r\n\r\n", 1)
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    clen = int(headers.get("content-length", "0"))
    if clen > max_piece_bytes:
        raise ValueError(f"content-length {clen} > {max_piece_bytes}")
    body = rest[:clen]
    if len(body) < clen:
        body += recv_exact(sock, clen - len(body), rate_bps)
    return status, headers, body


def check_piece(path, n, dig, offset, content):
    off, want = piece_bytes(path, n)
    errs = []
    if offset is not None and offset != off:
        errs.append(f"offset {offset} != {off}")
    if len(content) != len(want):
        errs.append(f"length {len(content)} != {len(want)}")
    elif content != want:
        errs.append("content differs")
    if dig != digest(want):
        errs.append(f"digest {dig!r} != {digest(want)!r}")
    return errs


def fetch_piece(proto, host, port, task, path, n, rate_bps=0, rcvbuf=0, timeout_s=30):
    with connect(host, port, timeout_s, rcvbuf) as s:
        if proto == "vortex":
            dig, off, content = vortex_get(s, task, n, rate_bps)
        else:
            status, headers, content = http_get(s, host, f"/tasks/{task}/pieces/{n}", rate_bps,
                                                "Connection: close\r\n")
            if status != 200:
                return [f"http status {status}"], 0
            dig, off = headers.get("x-hawker-piece-digest", ""), None
    return check_piece(path, n, dig, off, content), len(content)


def cmd_piece(a):
    t0 = time.monotonic()
    try:
        errs, nbytes = fetch_piece(a.proto, a.host, a.port, a.task, a.file, a.piece,
                                   a.rate_bps, a.rcvbuf_bytes, a.timeout_s)
    except Exception as e:  # noqa: BLE001 - report any failure as a test failure
        errs, nbytes = [f"{type(e).__name__}: {e}"], 0
    print(json.dumps({"proto": a.proto, "piece": a.piece, "bytes": nbytes, "errors": errs,
                      "seconds": round(time.monotonic() - t0, 3)}))
    return 0 if not errs else 1


def cmd_verify(a):
    with open(a.body, "rb") as f:
        content = f.read()
    dig = a.digest if a.digest is not None else digest(content)
    errs = check_piece(a.file, a.piece, dig, None, content)
    print(json.dumps({"piece": a.piece, "bytes": len(content), "errors": errs}))
    return 0 if not errs else 1


def cmd_pieces(a):
    out = []
    for n in range(piece_count(a.file)):
        _, data = piece_bytes(a.file, n)
        out.append(digest(data))
    print(json.dumps({"count": len(out), "piece_length": piece_length(os.path.getsize(a.file)),
                      "digests": out}))
    return 0


def cmd_load(a):
    tasks = []
    for spec in a.task:
        tid, _, path = spec.partition("=")
        tasks.append((tid, path, piece_count(path)))
    deadline = time.monotonic() + a.deadline_s
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "bad": 0, "bytes": 0, "errors": [], "http": 0, "vortex": 0}
    rng = random.Random(a.seed)
    plan = []
    for i in range(a.requests):
        tid, path, count = tasks[rng.randrange(len(tasks))]
        plan.append(("http" if i % 2 == 0 else "vortex", tid, path, rng.randrange(count)))

    def worker():
        while time.monotonic() < deadline:
            with lock:
                if state["next"] >= len(plan):
                    return
                proto, tid, path, n = plan[state["next"]]
                state["next"] += 1
            port = a.http_port if proto == "http" else a.vortex_port
            left = max(1.0, deadline - time.monotonic())
            try:
                errs, nbytes = fetch_piece(proto, a.host, port, tid, path, n, timeout_s=min(30, left))
            except Exception as e:  # noqa: BLE001
                errs, nbytes = [f"{type(e).__name__}: {e}"], 0
            with lock:
                state[proto] += 1
                if errs:
                    state["bad"] += 1
                    if len(state["errors"]) < 10:
                        state["errors"].append(f"{proto} piece {n}: {'; '.join(errs)}")
                else:
                    state["ok"] += 1
                    state["bytes"] += nbytes

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(a.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic() + 5))
    secs = time.monotonic() - t0
    done = state["ok"] + state["bad"]
    state.pop("next")
    state.update({"planned": len(plan), "done": done, "seconds": round(secs, 2),
                  "mbit_s": round(state["bytes"] * 8 / secs / 1e6, 1) if secs else 0})
    print(json.dumps(state))
    return 0 if state["bad"] == 0 and done == len(plan) else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("piece")
    p.add_argument("--proto", choices=["http", "vortex"], required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--file", required=True)
    p.add_argument("--piece", type=int, required=True)
    p.add_argument("--rate-bps", type=int, default=0)
    p.add_argument("--rcvbuf-bytes", type=int, default=0)
    p.add_argument("--timeout-s", type=float, default=30)
    v = sub.add_parser("verify")
    v.add_argument("--file", required=True)
    v.add_argument("--piece", type=int, required=True)
    v.add_argument("--body", required=True)
    v.add_argument("--digest")
    c = sub.add_parser("pieces")
    c.add_argument("--file", required=True)
    ld = sub.add_parser("load")
    ld.add_argument("--host", required=True)
    ld.add_argument("--http-port", type=int, required=True)
    ld.add_argument("--vortex-port", type=int, required=True)
    ld.add_argument("--task", action="append", required=True, help="TASKID=FILE")
    ld.add_argument("--connections", type=int, default=32)
    ld.add_argument("--requests", type=int, default=300)
    ld.add_argument("--deadline-s", type=float, default=120)
    ld.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    return {"piece": cmd_piece, "verify": cmd_verify, "pieces": cmd_pieces, "load": cmd_load}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
