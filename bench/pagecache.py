#!/usr/bin/env python3
"""The page cache of content files, for bench/compare.

  pagecache.py drop FILE...    drop each file's cached pages (POSIX_FADV_DONTNEED)
  pagecache.py share FILE...   print the share of their resident pages held in large folios
                               (0.0-1.0), or null when it cannot be read (needs root)

Why it matters: sendfile walks the page cache folio by folio, so content cached in 4 KiB pages
costs the server several times the CPU of content in large folios (docs/decisions/0003). A file
read from disk with cat lands mostly in large folios on ext4/XFS; reclaim (here: a DAMON pageout
scheme on the host) splits them over time.

How `share` reads it: each file is mapped read-only (no page is faulted in that is not already
resident: mincore first), the physical frame of every resident page comes from
/proc/self/pagemap and its flags from /proc/kpageflags (KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL).
"""
import ctypes
import mmap
import os
import struct
import sys

PAGE = os.sysconf("SC_PAGE_SIZE")
KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL = 15, 16
libc = ctypes.CDLL(None, use_errno=True)


def drop(paths):
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def resident_frames(path):
    """Physical frame numbers of the file's resident pages, or None without permission."""
    size = os.path.getsize(path)
    if size == 0:
        return []
    pages = (size + PAGE - 1) // PAGE
    with open(path, "rb") as f:
        m = mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ)
    try:
        # The mapping's address: from /proc/self/maps (mmap objects do not expose it).
        base = None
        real = os.path.realpath(path)
        for line in open("/proc/self/maps"):
            fields = line.split()
            if len(fields) >= 6 and fields[5] == real:
                base = int(fields[0].split("-")[0], 16)
                break
        if base is None:
            return None
        vec = (ctypes.c_ubyte * pages)()
        if libc.mincore(ctypes.c_void_p(base), ctypes.c_size_t(size), vec) != 0:
            return None
        resident = [i for i in range(pages) if vec[i] & 1]
        for i in resident:
            _ = m[i * PAGE]  # map the resident page (no I/O: it is in the page cache)
        frames = []
        pm = os.open("/proc/self/pagemap", os.O_RDONLY)
        try:
            for i in resident:
                entry = struct.unpack("Q", os.pread(pm, 8, (base // PAGE + i) * 8))[0]
                pfn = entry & ((1 << 55) - 1)
                if not entry >> 63 or pfn == 0:
                    return None  # not root: frame numbers are hidden
                frames.append(pfn)
        finally:
            os.close(pm)
        return frames
    finally:
        m.close()


def share(paths):
    large = total = 0
    try:
        kf = open("/proc/kpageflags", "rb", buffering=0)
    except OSError:
        return None
    with kf:
        for p in paths:
            frames = resident_frames(p)
            if frames is None:
                return None
            for pfn in frames:
                flags = struct.unpack("Q", os.pread(kf.fileno(), 8, pfn * 8))[0]
                total += 1
                if flags >> KPF_COMPOUND_HEAD & 1 or flags >> KPF_COMPOUND_TAIL & 1:
                    large += 1
    return large / total if total else None


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("drop", "share"):
        sys.exit(__doc__)
    paths = sys.argv[2:]
    if sys.argv[1] == "drop":
        drop(paths)
    else:
        s = share(paths)
        print("null" if s is None else f"{s:.3f}")


if __name__ == "__main__":
    main()
